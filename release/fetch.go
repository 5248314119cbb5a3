package release

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/store"
)

// Bundle is one complete release: the signed manifest and pointer and every artifact.
// Build makes one for publishing; Verifier.Fetch returns a verified one.
type Bundle struct {
	Manifest         *Manifest
	ManifestEnvelope []byte
	LatestEnvelope   []byte
	Files            map[string][]byte // artifact name -> bytes
}

// Fetch reads st and returns the newest release for the device if it is newer than the
// installed version and everything verifies: first any newer roots (one version at a time),
// then the pointer, the manifest it names and every artifact. It returns an error wrapping
// ErrUpToDate when the pointer names the installed version. New roots are trusted as soon as
// they verify (read them back with RootEnvelope); the installed version changes only through
// SetInstalled.
func (v *Verifier) Fetch(ctx context.Context, st store.Store, now time.Time) (*Bundle, error) {
	if err := v.UpdateRoots(ctx, st); err != nil {
		return nil, err
	}
	if err := v.CheckRoot(now); err != nil {
		return nil, err
	}
	key := LatestKey(v.model)
	ptr, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("release: fetch %s: %w", key, err)
	}
	l, err := v.VerifyLatest(ptr, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if l.Version == v.version {
		return nil, fmt.Errorf("%w: version %d", ErrUpToDate, l.Version)
	}
	key = ManifestKey(v.model, l.Version)
	md, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("release: fetch %s: %w", key, err)
	}
	m, err := v.VerifyManifest(md, l, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	b := &Bundle{Manifest: m, ManifestEnvelope: md, LatestEnvelope: ptr, Files: make(map[string][]byte, len(m.Artifacts))}
	for _, a := range m.Artifacts {
		key = ArtifactKey(m.Model, m.Version, a.Name)
		data, err := st.Get(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("release: fetch %s: %w", key, err)
		}
		if err := VerifyArtifact(m, a.Name, data); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		b.Files[a.Name] = data
	}
	return b, nil
}

// UpdateRoots trusts every newer root in st, one version at a time, up to MaxRootSteps.
func (v *Verifier) UpdateRoots(ctx context.Context, st store.Store) error {
	for i := 0; i < MaxRootSteps; i++ {
		key := RootKey(v.root.Version + 1)
		data, err := st.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("release: fetch %s: %w", key, err)
		}
		if err := v.UpdateRoot(data); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

// FetchKeyEpoch reads and verifies the key-epoch document of epoch and its collective public
// key from st, and returns both.
func (v *Verifier) FetchKeyEpoch(ctx context.Context, st store.Store, epoch uint64, now time.Time) (*KeyEpoch, []byte, error) {
	if err := v.UpdateRoots(ctx, st); err != nil {
		return nil, nil, err
	}
	if err := v.CheckRoot(now); err != nil {
		return nil, nil, err
	}
	dkey, pkey := KeyEpochKey(epoch), CollectiveKeyKey(epoch)
	doc, err := st.Get(ctx, dkey)
	if err != nil {
		return nil, nil, fmt.Errorf("release: fetch %s: %w", dkey, err)
	}
	pk, err := st.Get(ctx, pkey)
	if err != nil {
		return nil, nil, fmt.Errorf("release: fetch %s: %w", pkey, err)
	}
	k, err := v.VerifyKeyEpoch(doc, pk, now)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dkey, err)
	}
	if k.Epoch != epoch {
		return nil, nil, fmt.Errorf("%s: %w: document is for epoch %d", dkey, ErrMixAndMatch, k.Epoch)
	}
	return k, pk, nil
}
