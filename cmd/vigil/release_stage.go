package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// stagedRoot verifies the chain of roots in a staging directory, oldest first (the oldest must
// carry its own threshold, each next one its predecessor's too), and returns root version want,
// or the newest if want is 0, with its envelope. No staged root is an error wrapping
// store.ErrNotFound.
func stagedRoot(ctx context.Context, st store.Store, want uint64) (*release.Root, []byte, error) {
	versions, err := numbered(ctx, st, "root/", ".root.json")
	if err != nil {
		return nil, nil, err
	}
	if len(versions) == 0 {
		return nil, nil, fmt.Errorf("%w: no root in the staging directory (sign or copy in root/N.root.json first)", store.ErrNotFound)
	}
	var root *release.Root
	var env []byte
	for i, v := range versions {
		key := release.RootKey(v)
		data, err := st.Get(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		var next *release.Root
		if i == 0 {
			next, err = release.ParseTrustedRoot(data)
		} else {
			next, err = root.VerifyNext(data)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", key, err)
		}
		if next.Version != v {
			return nil, nil, fmt.Errorf("%s: %w: holds root version %d", key, release.ErrRootVersion, next.Version)
		}
		root, env = next, data
		if v == want {
			return root, env, nil
		}
	}
	if want != 0 {
		return nil, nil, fmt.Errorf("%w: root version %d is not staged", store.ErrNotFound, want)
	}
	return root, env, nil
}

// stageProblem is one thing in a staging directory that would not verify on a device.
type stageProblem struct {
	key string
	err error
}

// checkStage verifies what publishing a staging directory makes devices fetch, against the
// staged roots, as devices will: the root chain, the newest root's expiry, every pointer
// (timestamp role, unexpired) and the manifest it names (release role), and the newest key
// epoch (trustees role). Older manifests and epochs are history, signed under the roots of their
// time, and are not checked against the newest. It returns the newest root and every problem;
// publish refuses to write anything while there is one.
func checkStage(ctx context.Context, st store.Store, now time.Time) (*release.Root, []stageProblem, error) {
	root, _, err := stagedRoot(ctx, st, 0)
	if err != nil {
		return nil, nil, err
	}
	var probs []stageProblem
	if !now.Before(root.Expires) {
		probs = append(probs, stageProblem{release.RootKey(root.Version), fmt.Errorf("%w: root version %d expired at %s", release.ErrExpired, root.Version, root.Expires.Format(time.RFC3339))})
	}
	var keys []string
	models, err := stagedModels(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	for _, model := range models {
		key := release.LatestKey(model)
		keys = append(keys, key)
		data, err := st.Get(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		if _, doc, err := release.DecodeUnverified(data); err == nil {
			if l, ok := doc.(*release.Latest); ok {
				keys = append(keys, release.ManifestKey(model, l.Version))
			}
		}
	}
	if epochs, err := numbered(ctx, st, "keyepochs/", ".json"); err == nil && len(epochs) > 0 {
		keys = append(keys, release.KeyEpochKey(epochs[len(epochs)-1]))
	}
	for _, key := range keys {
		data, err := st.Get(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		doc, err := release.VerifyDocument(root, data)
		if err != nil {
			probs = append(probs, stageProblem{key, err})
			continue
		}
		switch d := doc.(type) {
		case *release.Manifest:
			if want := release.ManifestKey(d.Model, d.Version); want != key {
				probs = append(probs, stageProblem{key, fmt.Errorf("%w: holds %s version %d", release.ErrMixAndMatch, d.Model, d.Version)})
			}
			// The files too, before anything is published: a damaged one was found only once
			// a new region had been given the root.
			for _, a := range d.Artifacts {
				akey := release.ArtifactKey(d.Model, d.Version, a.Name)
				data, err := st.Get(ctx, akey)
				switch {
				case err != nil:
					probs = append(probs, stageProblem{akey, err})
				case int64(len(data)) != a.Size || sha256Hex(data) != a.SHA256:
					probs = append(probs, stageProblem{akey, fmt.Errorf("%w: %d bytes that do not match the manifest's %d and SHA-256", release.ErrHashMismatch, len(data), a.Size)})
				}
			}
		case *release.Latest:
			if !now.Before(d.Expires) {
				probs = append(probs, stageProblem{key, fmt.Errorf("%w: pointer expired at %s (re-sign it with `vigil release sign latest`)", release.ErrExpired, d.Expires.Format(time.RFC3339))})
			}
			mdata, err := st.Get(ctx, release.ManifestKey(d.Model, d.Version))
			if err != nil {
				probs = append(probs, stageProblem{key, fmt.Errorf("%w: names version %d, which is not staged", release.ErrMixAndMatch, d.Version)})
			} else if env, err := release.ParseEnvelope(mdata); err != nil || sha256Hex(env.Payload) != d.ManifestSHA256 {
				probs = append(probs, stageProblem{key, fmt.Errorf("%w: does not name the staged manifest of version %d", release.ErrMixAndMatch, d.Version)})
			}
		case *release.KeyEpoch:
			if !now.Before(d.Expires) {
				probs = append(probs, stageProblem{key, fmt.Errorf("%w: key epoch %d expired", release.ErrExpired, d.Epoch)})
			}
		default:
			probs = append(probs, stageProblem{key, fmt.Errorf("%w: a %T where a release document belongs", release.ErrWrongType, doc)})
		}
	}
	return root, probs, nil
}

// stageError joins the problems of a staging directory into one error that names every file.
func stageError(dir string, probs []stageProblem) error {
	if len(probs) == 0 {
		return nil
	}
	errs := make([]error, len(probs))
	for i, p := range probs {
		errs[i] = fmt.Errorf("%s: %w", p.key, p.err)
	}
	return fmt.Errorf("%s does not verify against its root; nothing was written:\n%w", dir, errors.Join(errs...))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
