package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/vigilauth/vigil/store"
)

// permanent reports errors that retrying cannot fix.
func permanent(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, store.ErrBadKey) || errors.Is(err, store.ErrTooLarge) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func writeObject(ctx context.Context, st store.Store, o object, root *Root) error {
	if o.kind == pointer {
		return writePointer(ctx, st, o, root)
	}
	err := st.Create(ctx, o.key, o.data)
	if !errors.Is(err, store.ErrExist) {
		return err
	}
	have, err := st.Get(ctx, o.key)
	if err != nil {
		return err
	}
	if bytes.Equal(have, o.data) {
		return nil
	}
	if o.kind == envelopeOnce {
		// A document signed again after a crash has new (hedged) signatures but the same
		// payload; the copy already published is equally valid.
		old, err1 := ParseEnvelope(have)
		ours, err2 := ParseEnvelope(o.data)
		if err1 == nil && err2 == nil && old.PayloadType == ours.PayloadType && bytes.Equal(old.Payload, ours.Payload) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrConflict, o.key)
}

func writePointer(ctx context.Context, st store.Store, o object, root *Root) error {
	have, err := st.Get(ctx, o.key)
	switch {
	case err == nil:
		if env, doc, derr := DecodeUnverified(have); derr == nil {
			l, ok := doc.(*Latest)
			genuine := root == nil
			if root != nil {
				_, verr := root.verifyRole(env, RoleTimestamp, TypeLatest)
				genuine = verr == nil
			}
			if ok && genuine && l.Version > o.version {
				return nil // a newer release is already published; never move the pointer back
			}
		}
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	return st.Put(ctx, o.key, o.data)
}
