package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/store"
)

// permanent reports errors that retrying cannot fix.
func permanent(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrUnverified) || errors.Is(err, store.ErrBadKey) || errors.Is(err, store.ErrTooLarge) ||
		errors.Is(err, store.ErrDenied) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// storeTrust is what a publisher checks documents already in a store against.
type storeTrust struct {
	root *Root // nil: nothing can be verified
	now  func() time.Time
}

// verdict classifies an object version already stored under a key we write.
type verdict int

const (
	junk    verdict = iota // does not verify: someone else's writing, replaced
	same                   // ours, or an equally valid signing of the same document
	genuine                // a different document that verifies: a real conflict
)

// judge classifies have against o.
func (t storeTrust) judge(o object, have []byte) verdict {
	if bytes.Equal(have, o.data) {
		return same
	}
	if o.kind == exactOnce {
		// An artifact is genuine only through its manifest, which is checked before it.
		if t.root == nil {
			return genuine // without a root, refuse to replace anything (as before roots were known)
		}
		return junk
	}
	env, err := ParseEnvelope(have)
	if err != nil {
		return junk
	}
	ours, err := ParseEnvelope(o.data)
	if err != nil || env.PayloadType != ours.PayloadType {
		return junk
	}
	if o.payloadType == TypeRoot {
		// A root is genuine if it follows the publisher's root (when that is its predecessor),
		// as devices check it; otherwise at least its own root keys must have signed it.
		var err error
		if t.root != nil && o.version == t.root.Version+1 {
			_, err = t.root.VerifyNext(have)
		} else {
			_, err = ParseTrustedRoot(have)
		}
		if err != nil {
			return junk
		}
	} else if t.root != nil {
		if _, err := t.root.verifyRole(env, o.role, o.payloadType); err != nil {
			return junk
		}
	}
	if bytes.Equal(env.Payload, ours.Payload) {
		// A document signed again after a crash has new (hedged) signatures but the same
		// payload; the copy already published is equally valid.
		return same
	}
	return genuine
}

func writeObject(ctx context.Context, st store.Store, o object, t storeTrust) error {
	switch o.kind {
	case pointer:
		return writePointer(ctx, st, o, t)
	case checkOnly:
		return checkFree(ctx, st, o, t)
	}
	err := st.Create(ctx, o.key, o.data)
	if !errors.Is(err, store.ErrExist) {
		return err
	}
	return settle(ctx, st, o, t)
}

// settle handles a write-once key that is taken: a conflict if a stored version before ours is
// a different genuine document; otherwise our version is added, locked, unless it is there
// already and is also the newest. Devices read the versions oldest first and take the first
// that verifies, so the copy added after a plain PUT or a delete marker that hid ours changes
// nothing for them; it makes a plain GET (`inspect`, an operator fetching a root) return the
// genuine document again. (The comment said so before the code did: the loop returned at our
// version, and the plain PUT stayed on top; found by a review.) The added copy is locked like
// the first, and comes after it, so it never stands between a device and the genuine version.
func settle(ctx context.Context, st store.Store, o object, t storeTrust) error {
	limit := max(int64(len(o.data)), MaxEnvelopeBytes)
	versions, err := store.GetVersions(ctx, st, o.key, limit, MaxObjectVersions)
	// Nothing readable, or only objects larger than anything we write: junk.
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTooLarge) {
		return err
	}
	ours := false
versions:
	for _, have := range versions {
		switch t.judge(o, have) {
		case same:
			ours = true
			break versions
		case genuine:
			return fmt.Errorf("%w: %s", ErrConflict, o.key)
		}
	}
	if ours {
		if _, ok := st.(store.VersionReader); !ok {
			return nil // no history: the one version is the newest
		}
		newest, err := store.GetLimit(ctx, st, o.key, limit)
		if err == nil && t.judge(o, newest) == same {
			return nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrTooLarge) {
			return err
		}
		// Hidden behind a plain PUT or a delete marker: a copy on top.
		return store.PutVersion(ctx, st, o.key, o.data)
	}
	if len(versions) >= MaxObjectVersions {
		return fmt.Errorf("%w: %s holds %d versions that do not verify; readers would not reach a new one", ErrUnverified, o.key, len(versions))
	}
	if err := store.PutVersion(ctx, st, o.key, o.data); err != nil {
		return err
	}
	versions, err = store.GetVersions(ctx, st, o.key, limit, MaxObjectVersions)
	if err != nil {
		return err
	}
	for _, have := range versions {
		if t.judge(o, have) == same {
			return nil
		}
	}
	return fmt.Errorf("%w: %s: the version just written is not readable", ErrUnverified, o.key)
}

// checkFree refuses, before anything is written, a key that holds a different genuine document.
func checkFree(ctx context.Context, st store.Store, o object, t storeTrust) error {
	versions, err := store.GetVersions(ctx, st, o.key, MaxEnvelopeBytes, MaxObjectVersions)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrTooLarge) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, have := range versions {
		if t.judge(o, have) == same {
			return nil
		}
	}
	for _, have := range versions {
		if t.judge(o, have) == genuine {
			return fmt.Errorf("%w: %s", ErrConflict, o.key)
		}
	}
	return nil
}

// pointerState reads the pointer stored under o.key: its version if it verifies (under the
// publisher's root, unexpired, within MaxPointerLifetime), and whether it is exactly ours.
func pointerState(ctx context.Context, st store.Store, o object, t storeTrust) (have []byte, verified bool, version uint64, err error) {
	have, err = store.GetLimit(ctx, st, o.key, MaxEnvelopeBytes)
	if errors.Is(err, store.ErrNotFound) {
		return nil, false, 0, nil
	}
	if errors.Is(err, store.ErrTooLarge) {
		return nil, false, 0, nil // junk; replaced
	}
	if err != nil {
		return nil, false, 0, err
	}
	env, doc, derr := DecodeUnverified(have)
	l, ok := doc.(*Latest)
	if derr != nil || !ok || t.root == nil {
		return have, false, 0, nil
	}
	now := t.now()
	if _, verr := t.root.verifyRole(env, RoleTimestamp, TypeLatest); verr != nil || !now.Before(l.Expires) || l.checkLifetime(now) != nil {
		// Devices refuse it, so it must not hold the publisher back.
		return have, false, 0, nil
	}
	return have, true, l.Version, nil
}

// writePointer replaces the pointer unless the store holds a verified pointer to a newer
// version, and then reads it back: it succeeds only if the region's pointer is ours or a
// verified newer one. A pointer that does not verify (forged, junk, expired) is replaced;
// without a root to verify with, a pointer that names a newer version is an error, never a
// silent success.
func writePointer(ctx context.Context, st store.Store, o object, t storeTrust) error {
	have, verified, version, err := pointerState(ctx, st, o, t)
	if err != nil {
		return err
	}
	if verified && version > o.version {
		return nil // a newer release is already published; never move the pointer back
	}
	if have != nil && t.root == nil && !bytes.Equal(have, o.data) {
		if _, doc, derr := DecodeUnverified(have); derr == nil {
			if l, ok := doc.(*Latest); ok && l.Version > o.version {
				return fmt.Errorf("%w: %s names version %d and there is no root to verify it with", ErrUnverified, o.key, l.Version)
			}
		}
	}
	// Written even when identical: a refresh also repairs a store that lost the object.
	if err := st.Put(ctx, o.key, o.data); err != nil {
		return err
	}
	back, verified, version, err := pointerState(ctx, st, o, t)
	if err != nil {
		return err
	}
	if bytes.Equal(back, o.data) || verified && version > o.version {
		return nil
	}
	return fmt.Errorf("%w: %s: the pointer read back is not the one written", ErrUnverified, o.key)
}
