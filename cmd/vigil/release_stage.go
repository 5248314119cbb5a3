package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// stageChain is the chain of roots in a staging directory that verifies, oldest first (the
// oldest must carry its own threshold, each next one its predecessor's too).
type stageChain struct {
	roots []*release.Root
	envs  [][]byte
	// pending is the key of the newest staged root if it has not met its thresholds yet (a
	// ceremony under way: written with `sign root -partial`, signatures still to be added), and
	// pendingErr why. It is left out of roots: everything works from the root before it, and
	// publish publishes nothing above that.
	pending    string
	pendingErr error
}

// stagedChain verifies the roots of a staging directory up to version upTo (0: all). A root
// that does not verify fails it, except the newest when it lacks only signatures (a
// *release.SignatureError with no invalid signature, of the right version, with a predecessor
// that verifies): that one is pending. No staged root is an error wrapping store.ErrNotFound.
func stagedChain(ctx context.Context, st store.Store, upTo uint64) (*stageChain, error) {
	versions, err := numbered(ctx, st, "root/", ".root.json")
	if err != nil {
		return nil, err
	}
	for upTo > 0 && len(versions) > 0 && versions[len(versions)-1] > upTo {
		versions = versions[:len(versions)-1]
	}
	if len(versions) == 0 {
		return nil, fmt.Errorf("%w: no root in the staging directory (sign or copy in root/N.root.json first)", store.ErrNotFound)
	}
	c := &stageChain{}
	for i, v := range versions {
		key := release.RootKey(v)
		data, err := st.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		var next *release.Root
		if i == 0 {
			next, err = release.ParseTrustedRoot(data)
		} else {
			next, err = c.newest().VerifyNext(data)
		}
		if err != nil {
			if i > 0 && i == len(versions)-1 && awaitsSignatures(err, c.newest(), data, v) {
				c.pending, c.pendingErr = key, err
				return c, nil
			}
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if next.Version != v {
			return nil, fmt.Errorf("%s: %w: holds root version %d", key, release.ErrRootVersion, next.Version)
		}
		c.roots, c.envs = append(c.roots, next), append(c.envs, data)
	}
	return c, nil
}

// awaitsSignatures reports whether err, from verifying data as root version v after prev,
// means only that signatures are missing: too few valid ones (a *release.SignatureError), a
// document that is a root of version v, and no signature by a root key of prev or of its own
// that fails to verify (verification stops at the first role short of its threshold, so both
// are checked here).
func awaitsSignatures(err error, prev *release.Root, data []byte, v uint64) bool {
	var se *release.SignatureError
	if !errors.As(err, &se) || len(se.Invalid) > 0 {
		return false
	}
	env, doc, derr := release.DecodeUnverified(data)
	r, ok := doc.(*release.Root)
	if derr != nil || !ok || r.Version != v {
		return false
	}
	for _, under := range []*release.Root{prev, r} {
		checks, _ := under.CheckSignatures(env, release.RoleRoot)
		for _, c := range checks {
			if c.InRole && c.Err != nil {
				return false
			}
		}
	}
	return true
}

// newest returns the newest root that verifies.
func (c *stageChain) newest() *release.Root { return c.roots[len(c.roots)-1] }

// newestEnv returns the envelope of the newest root that verifies.
func (c *stageChain) newestEnv() []byte { return c.envs[len(c.envs)-1] }

// at returns root version v of the chain.
func (c *stageChain) at(v uint64) (*release.Root, error) {
	for _, r := range c.roots {
		if r.Version == v {
			return r, nil
		}
	}
	if c.pending == release.RootKey(v) {
		return nil, fmt.Errorf("%s: %w", c.pending, c.pendingErr)
	}
	return nil, fmt.Errorf("%w: root version %d is not staged", store.ErrNotFound, v)
}

// warn prints one line about a pending root of the staging directory dir, if there is one.
func (c *stageChain) warn(w io.Writer, dir string) {
	if c.pending == "" {
		return
	}
	fmt.Fprintf(w, "warning: %s has not met its thresholds yet (%v); working from root version %d until it has\n",
		strings.TrimSuffix(dir, "/")+"/"+c.pending, c.pendingErr, c.newest().Version)
}

// stagedRoot returns the newest staged root that verifies, and prints on w a warning naming a
// pending one (see stagedChain).
func stagedRoot(ctx context.Context, st store.Store, dir string, w io.Writer) (*release.Root, error) {
	c, err := stagedChain(ctx, st, 0)
	if err != nil {
		return nil, err
	}
	c.warn(w, dir)
	return c.newest(), nil
}

// stageProblem is one thing in a staging directory that would not verify on a device.
type stageProblem struct {
	key string
	err error
}

// stagedDoc is a document checkStage verifies: one devices fetch now, against the newest root,
// or one of history, against the root of its time.
type stagedDoc struct {
	key     string
	want    string // "pointer", "manifest" or "key epoch"
	history bool
}

// checkStage verifies everything publishing a staging directory writes, against the staged
// roots: the root chain (a pending newest root is left out, see stagedChain), the newest root's
// expiry; as devices will, against the newest root, every pointer (timestamp role, unexpired)
// and the manifest it names (release role) with its artifacts, and the newest key epoch
// (trustees role, unexpired) with its collective key; and the history publish writes beside
// them, each against the staged root of its time (it must verify under one of the chain): every
// older key epoch and, with all, every older manifest of each model with its artifacts. History
// may have expired. It returns the chain and every problem; publish refuses to write anything
// while there is one.
func checkStage(ctx context.Context, st store.Store, now time.Time, all bool) (*stageChain, []stageProblem, error) {
	c, err := stagedChain(ctx, st, 0)
	if err != nil {
		return nil, nil, err
	}
	root := c.newest()
	var probs []stageProblem
	if !now.Before(root.Expires) {
		probs = append(probs, stageProblem{release.RootKey(root.Version), fmt.Errorf("%w: root version %d expired at %s", release.ErrExpired, root.Version, root.Expires.Format(time.RFC3339))})
	}
	var docs []stagedDoc
	models, err := stagedModels(ctx, st)
	if err != nil {
		return nil, nil, err
	}
	for _, model := range models {
		key := release.LatestKey(model)
		docs = append(docs, stagedDoc{key: key, want: "pointer"})
		data, err := st.Get(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		if _, doc, err := release.DecodeUnverified(data); err == nil {
			if l, ok := doc.(*release.Latest); ok {
				docs = append(docs, stagedDoc{key: release.ManifestKey(model, l.Version), want: "manifest"})
				if all {
					older, err := numbered(ctx, st, release.ReleasePrefix(model), "/manifest.json")
					if err != nil {
						return nil, nil, err
					}
					for _, v := range older {
						if v < l.Version {
							docs = append(docs, stagedDoc{key: release.ManifestKey(model, v), want: "manifest", history: true})
						}
					}
				}
			}
		}
	}
	epochs, err := numbered(ctx, st, "keyepochs/", ".json")
	if err != nil {
		return nil, nil, err
	}
	for i, e := range epochs {
		docs = append(docs, stagedDoc{key: release.KeyEpochKey(e), want: "key epoch", history: i < len(epochs)-1})
	}
	for _, sd := range docs {
		key := sd.key
		data, err := st.Get(ctx, key)
		if err != nil {
			return nil, nil, err
		}
		var doc release.Document
		if sd.history {
			doc, err = c.verifyHistory(data)
		} else {
			doc, err = release.VerifyDocument(root, data)
		}
		if err != nil {
			probs = append(probs, stageProblem{key, err})
			continue
		}
		if got := docKind(doc); got != sd.want {
			probs = append(probs, stageProblem{key, fmt.Errorf("%w: a %s where a %s belongs", release.ErrWrongType, got, sd.want)})
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
			if want := release.KeyEpochKey(d.Epoch); want != key {
				probs = append(probs, stageProblem{key, fmt.Errorf("%w: holds key epoch %d", release.ErrMixAndMatch, d.Epoch)})
			}
			if !sd.history && !now.Before(d.Expires) {
				probs = append(probs, stageProblem{key, fmt.Errorf("%w: key epoch %d expired", release.ErrExpired, d.Epoch)})
			}
			pkey := release.CollectiveKeyKey(d.Epoch)
			pk, err := st.Get(ctx, pkey)
			switch {
			case err != nil:
				probs = append(probs, stageProblem{pkey, err})
			case int64(len(pk)) != d.PublicKeySize || sha256Hex(pk) != d.PublicKeySHA256:
				probs = append(probs, stageProblem{pkey, fmt.Errorf("%w: %d bytes that do not match key epoch %d's size and SHA-256", release.ErrHashMismatch, len(pk), d.Epoch)})
			}
		}
	}
	return c, probs, nil
}

// docKind names the kind of a staged document as stagedDoc.want does.
func docKind(doc release.Document) string {
	switch doc.(type) {
	case *release.Latest:
		return "pointer"
	case *release.Manifest:
		return "manifest"
	case *release.KeyEpoch:
		return "key epoch"
	}
	return fmt.Sprintf("%T", doc)
}

// verifyHistory verifies a document published beside the current ones, signed under the root
// of its time: it must verify under one root of the chain (newest first). Expiry is not checked.
func (c *stageChain) verifyHistory(data []byte) (release.Document, error) {
	var first error
	for i := len(c.roots) - 1; i >= 0; i-- {
		doc, err := release.VerifyDocument(c.roots[i], data)
		if err == nil {
			return doc, nil
		}
		if first == nil {
			first = err
		}
	}
	if len(c.roots) == 1 {
		return nil, first
	}
	return nil, fmt.Errorf("verifies under none of the staged root versions %d to %d (under version %d: %w)",
		c.roots[0].Version, c.newest().Version, c.newest().Version, first)
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
	return fmt.Errorf("%s does not verify against its roots; nothing was written:\n%w", dir, errors.Join(errs...))
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
