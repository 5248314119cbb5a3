package release

import (
	"cmp"
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
// ErrUpToDate when the pointer names the installed release or one passed to Skip (the same
// version and manifest hash), unless the installed manifest has expired: then the error wraps
// ErrStale, on every call until a newer release is installed. A release whose files matched
// no stored copy is refused (ErrHashMismatch) at every call until its back-off ends (see
// Refused, RefusedRetryMin), and read again then. A pointer naming the installed
// version with another manifest is ErrMixAndMatch. New roots are trusted as soon as they verify
// (read them back with RootEnvelope); the installed version changes only through
// SetInstalledManifest.
//
// Every read is bounded: documents by MaxEnvelopeBytes, each artifact by its signed size,
// before a byte is read where the store can tell sizes, the listing of a write-once object's
// versions by store.MaxListingBytes, and all of them together, listings included, by
// MaxFetchBytes; a manifest whose artifacts add up to more than MaxReleaseBytes, or to more
// than the budget has left, is refused before any artifact is read. Write-once objects are
// read version by version, oldest first (see store.VersionReader), and the first that verifies
// is used, so that a later plain PUT, a delete marker or junk written first under the key by
// someone holding the bucket's credentials does not stop the device. Bound the whole call
// with ctx's deadline.
func (v *Verifier) Fetch(ctx context.Context, st store.Store, now time.Time) (*Bundle, error) {
	budget := newBudget(v.maxFetch())
	// A root that does not verify is not trusted, exactly as if it were absent; the device goes
	// on under the root it trusts, and reports the refused root only if nothing else verifies.
	rootErr := v.updateRoots(ctx, st, budget)
	if err := ctx.Err(); err != nil {
		// Never (nil, nil): the updater took that for a release and crashed on it when a
		// device stopped during a poll.
		return nil, cmp.Or(rootErr, err)
	}
	b, err := v.fetch(ctx, st, now, budget)
	if err != nil && rootErr != nil && !errors.Is(err, ErrUpToDate) {
		if errors.Is(err, ErrNoRelease) {
			// Nothing published beside a refused root is a failure, not a stream yet to
			// start: whoever replaced the root may be withholding the releases too.
			err = errors.New(err.Error())
		}
		return nil, errors.Join(err, rootErr)
	}
	return b, err
}

func (v *Verifier) fetch(ctx context.Context, st store.Store, now time.Time, budget *budget) (*Bundle, error) {
	if err := v.CheckRoot(now); err != nil {
		return nil, err
	}
	key := LatestKey(v.model)
	ptr, err := budget.get(ctx, st, key, MaxEnvelopeBytes)
	if errors.Is(err, store.ErrNotFound) && v.version == 0 {
		// With a release installed, a missing pointer is a store withholding it, not a
		// stream yet to start.
		return nil, fmt.Errorf("release: fetch %s: %w: %w", key, ErrNoRelease, err)
	}
	if err != nil {
		return nil, fmt.Errorf("release: fetch %s: %w", key, err)
	}
	l, err := v.VerifyLatest(ptr, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	if l.Version == v.version && v.installed != nil && l.ManifestSHA256 != v.installedSHA {
		// Another release of the installed version, under keys the root still trusts for the
		// installed one: not an update, and not to be called up to date either.
		return nil, fmt.Errorf("%s: %w: names version %d with manifest %.12s, the installed one is %.12s",
			key, ErrMixAndMatch, l.Version, l.ManifestSHA256, v.installedSHA)
	}
	if l.Version == v.version || v.skipped(l) {
		if err := v.checkInstalled(now); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: version %d", ErrUpToDate, l.Version)
	}
	ref := ReleaseRef{Version: l.Version, ManifestSHA256: l.ManifestSHA256}
	if err := v.refusedNow(ref, now); err != nil {
		// Its files matched no stored copy a short while ago: reported again at every poll,
		// and read again after the back-off, not at every poll (a review found the device
		// calling itself up to date, silently, until a restart or the next release).
		return nil, errors.Join(err, v.checkInstalled(now))
	}
	key = ManifestKey(v.model, l.Version)
	var m *Manifest
	md, err := firstVerified(ctx, st, key, MaxEnvelopeBytes, budget, func(data []byte) error {
		var err error
		m, err = v.VerifyManifest(data, l, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The manifest verified, so its sizes are at most MaxReleaseBytes together; what the roots and
	// documents left of the budget must still pay for every artifact once, and for the listing
	// the last one reserves, or none is read.
	if need := m.filesSize() + int64(len(m.Artifacts)) + listing(st); need > budget.left {
		return nil, fmt.Errorf("release: %s v%d: artifacts: %w", m.Model, m.Version, budget.refuse(need))
	}
	b := &Bundle{Manifest: m, ManifestEnvelope: md, LatestEnvelope: ptr, Files: make(map[string][]byte, len(m.Artifacts))}
	for _, a := range m.Artifacts {
		// Read with the signed size as the limit: the store reads at most one byte more, to
		// tell a larger object.
		data, err := firstVerified(ctx, st, ArtifactKey(m.Model, m.Version, a.Name), a.Size, budget, func(data []byte) error {
			return VerifyArtifact(m, a.Name, data)
		})
		if errors.Is(err, ErrHashMismatch) && !errors.Is(err, errUnchecked) {
			// Every stored copy was read and none matches what the manifest signs: tampered
			// files, a truncated copy, or a release signed with a stolen key. Fetched again at
			// every poll, it would cost up to MaxReleaseBytes each time; it is read again only
			// after a back-off, and reported as refused meanwhile. (A copy too large is
			// refused from its size, unread.)
			err = v.refuseFiles(ref, now, err)
		}
		if errors.Is(err, store.ErrTooLarge) && !errors.Is(err, errBudget) {
			// Larger than its signed size: tampered, refused before it is read.
			return nil, fmt.Errorf("%w: artifact %s is larger than its signed %d bytes: %w", ErrHashMismatch, a.Name, a.Size, err)
		}
		if err != nil {
			return nil, err
		}
		b.Files[a.Name] = data
	}
	delete(v.refused, ref)
	return b, nil
}

// UpdateRoots trusts every newer root in st, one version at a time, up to MaxRootSteps. Of the
// stored versions of each root key it trusts the first that verifies. Its reads together are
// bounded by MaxFetchBytes.
func (v *Verifier) UpdateRoots(ctx context.Context, st store.Store) error {
	return v.updateRoots(ctx, st, newBudget(v.maxFetch()))
}

func (v *Verifier) updateRoots(ctx context.Context, st store.Store, budget *budget) error {
	for i := 0; i < MaxRootSteps; i++ {
		key := RootKey(v.root.Version + 1)
		_, err := firstVerified(ctx, st, key, MaxEnvelopeBytes, budget, v.UpdateRoot)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// FetchKeyEpoch reads and verifies the key-epoch document of epoch and its collective public
// key from st, and returns both. As in Fetch, both are read version by version, oldest first,
// and the first that verifies is used: a plain PUT over either by someone holding the bucket's
// credentials does not hide the genuine one (a review found `vigil release status` failing on
// such junk while devices and publish read past it). The reads together, roots included, are
// bounded by MaxFetchBytes.
func (v *Verifier) FetchKeyEpoch(ctx context.Context, st store.Store, epoch uint64, now time.Time) (*KeyEpoch, []byte, error) {
	budget := newBudget(v.maxFetch())
	if err := v.updateRoots(ctx, st, budget); err != nil {
		return nil, nil, err
	}
	if err := v.CheckRoot(now); err != nil {
		return nil, nil, err
	}
	dkey, pkey := KeyEpochKey(epoch), CollectiveKeyKey(epoch)
	var k *KeyEpoch
	doc, err := firstVerified(ctx, st, dkey, MaxEnvelopeBytes, budget, func(data []byte) error {
		var err error
		if k, err = v.checkKeyEpoch(data, now); err == nil && k.Epoch != epoch {
			err = fmt.Errorf("%w: document is for epoch %d", ErrMixAndMatch, k.Epoch)
		}
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	// The signed document says how large the key is; nothing larger is read.
	pk, err := firstVerified(ctx, st, pkey, k.PublicKeySize, budget, func(data []byte) error {
		return k.checkPublicKey(data)
	})
	if errors.Is(err, store.ErrTooLarge) && !errors.Is(err, errBudget) {
		return nil, nil, fmt.Errorf("%s: %w: larger than the signed %d bytes: %w", pkey, ErrHashMismatch, k.PublicKeySize, err)
	}
	if err != nil {
		return nil, nil, err
	}
	if k, err = v.VerifyKeyEpoch(doc, pk, now); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dkey, err)
	}
	return k, pk, nil
}
