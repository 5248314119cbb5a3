package release

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

// stuckPointer is a store where writes to pointers are lost: a region whose pointer someone
// else controls.
type stuckPointer struct{ store.Store }

func (s stuckPointer) Put(ctx context.Context, key string, data []byte) error {
	if strings.HasSuffix(key, "/latest.json") {
		return nil
	}
	return s.Store.Put(ctx, key, data)
}

// TestAttackForgedPointer is issue 15, item 2: a well-formed pointer with a higher version,
// signed by keys the root does not trust, used to hold the publisher back while it reported
// success, and the region's devices never got the new release. Now the publisher verifies the
// pointer it finds with the current root, replaces a forgery, reads the pointer back, and never
// reports success for a region whose pointer does not verify. The outbox does the same with the
// root it is given (or, without one, with its own keys).
func TestAttackForgedPointer(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	evil := &trust{release: newKey(t), timestamp: newKey(t)}
	forged := evil.bundle(t, 1000).LatestEnvelope
	p, err := NewPublisher(PublisherConfig{Attempts: 1, Root: tr.root, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("publisher replaces the forgery", func(t *testing.T) {
		st := newFS(t)
		tr.publishAll(t, st, tr.bundle(t, 1))
		if err := st.Put(ctx, LatestKey("vigil-ae"), forged); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 2)); err != nil {
			t.Fatal(err)
		}
		if b, err := tr.verifier(t, 1).Fetch(ctx, st, now); err != nil || b.Manifest.Version != 2 {
			t.Fatalf("device after publish over a forged pointer: %v", err)
		}
	})
	t.Run("no success while the forgery stays", func(t *testing.T) {
		fs := newFS(t)
		tr.publishAll(t, fs, tr.bundle(t, 1))
		if err := fs.Put(ctx, LatestKey("vigil-ae"), forged); err != nil {
			t.Fatal(err)
		}
		err := p.Publish(ctx, []Region{{"eu", stuckPointer{fs}}}, tr.bundle(t, 2))
		var re *RegionError
		if !errors.Is(err, ErrUnverified) || !errors.As(err, &re) || re.Region != "eu" {
			t.Fatalf("got %v, want a RegionError for eu wrapping ErrUnverified", err)
		}
	})
	t.Run("outbox", func(t *testing.T) {
		fs := newFS(t)
		clk := &clock{t: now}
		tr.publishAll(t, fs, tr.bundle(t, 1))
		if err := fs.Put(ctx, LatestKey("vigil-ae"), forged); err != nil {
			t.Fatal(err)
		}
		o := tr.outbox(t, t.TempDir(), clk, Region{"eu", fs})
		tr.submit(t, o, 2)
		if err := o.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if b, err := tr.verifier(t, 1).Fetch(ctx, fs, now); err != nil || b.Manifest.Version != 2 {
			t.Fatalf("device after the outbox published over a forged pointer: %v", err)
		}
		stuck := tr.outbox(t, t.TempDir(), clk, Region{"eu", stuckPointer{fs}})
		if err := fs.Put(ctx, LatestKey("vigil-ae"), forged); err != nil {
			t.Fatal(err)
		}
		tr.submit(t, stuck, 3)
		if err := stuck.Flush(ctx); !errors.Is(err, ErrUnverified) {
			t.Fatalf("outbox over a stuck forged pointer: %v, want ErrUnverified", err)
		}
		if s := stuck.Status()[0]; s.Published == 3 || s.Failures == 0 {
			t.Fatalf("outbox status %+v: reports the region up to date", s)
		}
	})
}
