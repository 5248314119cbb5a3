package release

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

func TestCrashBetweenArtifactAndPointer(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st, tr.bundle(t, 1))
	b2 := tr.bundle(t, 2)

	// The coordinator "crashes" after each number of writes; v2 has 2 artifacts, a manifest
	// and a pointer, so 1..3 cut the publication anywhere before the pointer.
	for crashAfter := 1; crashAfter <= 3; crashAfter++ {
		f := &faultyStore{Store: st, okWrites: crashAfter}
		p, _ := publisher(t, 1)
		if err := p.Publish(ctx, []Region{{"eu", f}}, b2); !errors.Is(err, errDown) {
			t.Fatalf("crash after %d writes: publish returned %v", crashAfter, err)
		}
		// Devices still see v1 complete and nothing of v2.
		if _, err := tr.verifier(t, 1).Fetch(ctx, st, now); !errors.Is(err, ErrUpToDate) {
			t.Fatalf("crash after %d writes: device sees %v", crashAfter, err)
		}
		if b, err := tr.verifier(t, 0).Fetch(ctx, st, now); err != nil || b.Manifest.Version != 1 {
			t.Fatalf("crash after %d writes: new device: %v", crashAfter, err)
		}
	}
	// After the restart the coordinator signs v2 again (new hedged signatures) and retries.
	again := tr.bundle(t, 2)
	p, _ := publisher(t, 1)
	if err := p.Publish(ctx, []Region{{"eu", st}}, again); err != nil {
		t.Fatalf("retry after crash: %v", err)
	}
	b, err := tr.verifier(t, 1).Fetch(ctx, st, now)
	if err != nil || b.Manifest.Version != 2 {
		t.Fatalf("after retry: %v", err)
	}
	keys, err := st.List(ctx, ReleasePrefix("vigil-ae")+"2/")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		ArtifactKey("vigil-ae", 2, "model.bin"),
		ArtifactKey("vigil-ae", 2, "scaler.bin"),
		ManifestKey("vigil-ae", 2),
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("v2 objects %v, want %v", keys, want)
	}
}

func TestPublishRetriesWithBackoff(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	up, flaky, dead := newFS(t), newFS(t), newFS(t)
	b := tr.bundle(t, 1)
	p, ns := publisher(t, 6)
	err := p.Publish(ctx, []Region{
		{"us", up},
		{"eu", &faultyStore{Store: flaky, okWrites: -1, failFor: 3}},
		{"ap", &faultyStore{Store: dead, okWrites: 0}},
	}, b)
	var re *RegionError
	if !errors.As(err, &re) || re.Region != "ap" || re.Attempts != 6 || !errors.Is(err, errDown) {
		t.Fatalf("got %v, want region ap to fail after 6 attempts", err)
	}
	if errors.Is(err, ErrConflict) {
		t.Fatal("outage reported as conflict")
	}
	for _, r := range []struct {
		name string
		st   interface{ Dir() string }
	}{{"us", up}, {"eu", flaky}} {
		if _, err := tr.verifier(t, 0).Fetch(ctx, newFSAt(t, r.st.Dir()), t0); err != nil {
			t.Errorf("region %s: %v", r.name, err)
		}
	}
	// eu failed 3 times (100, 200, 400 ms); ap failed 6 times (5 sleeps, capped at 1 s).
	got := slices.Clone(ns.delays)
	slices.Sort(got)
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 100 * ms, 200 * ms, 200 * ms, 400 * ms, 400 * ms, 800 * ms, time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("backoffs %v, want %v", got, want)
	}
}

func TestPublishConflictIsPermanent(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st, tr.bundle(t, 1))
	b, err := Build(tr.spec(1, map[string][]byte{"model.bin": []byte("different weights"), "scaler.bin": []byte("feature scaler")}), tr.release, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	p, ns := publisher(t, 5)
	err = p.Publish(ctx, []Region{{"eu", st}}, b)
	if !errors.Is(err, ErrConflict) || len(ns.delays) != 0 {
		t.Fatalf("got %v after %d retries, want ErrConflict without retry", err, len(ns.delays))
	}
}

// TestPublishDeniedIsPermanent: credentials the region refuses are not an outage: the publisher
// says so at once instead of trying eight times over a minute (found by a docs review).
func TestPublishDeniedIsPermanent(t *testing.T) {
	tr := newTrust(t, 1, 1)
	p, ns := publisher(t, 5)
	err := p.Publish(context.Background(), []Region{{"eu", deniedStore{newFS(t)}}}, tr.bundle(t, 1))
	if !errors.Is(err, store.ErrDenied) || len(ns.delays) != 0 {
		t.Fatalf("got %v after %d retries, want ErrDenied without retry", err, len(ns.delays))
	}
}

// deniedStore refuses every write as a region does credentials without its policy.
type deniedStore struct{ store.Store }

func (d deniedStore) Put(context.Context, string, []byte) error {
	return fmt.Errorf("store: minio: put x: %w: Access Denied.", store.ErrDenied)
}

func (d deniedStore) PutVersion(context.Context, string, []byte) error {
	return fmt.Errorf("store: minio: put x: %w: Access Denied.", store.ErrDenied)
}

func TestPointerNeverMovesBack(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st, tr.bundle(t, 1), tr.bundle(t, 2))
	p, _ := publisher(t, 1)
	// Without a root the publisher cannot tell a newer pointer from a forgery: an error, never
	// a silent success.
	if err := p.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 1)); !errors.Is(err, ErrUnverified) {
		t.Fatalf("without a root: %v, want ErrUnverified", err)
	}
	p = p.WithRoot(tr.root, func() time.Time { return t0 })
	if err := p.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 1)); err != nil {
		t.Fatal(err)
	}
	b, err := tr.verifier(t, 0).Fetch(ctx, st, t0)
	if err != nil || b.Manifest.Version != 2 {
		t.Fatalf("pointer moved back: %v", err)
	}
	// A refreshed pointer for the current version replaces the old one.
	l, err := SignLatestFor(b.Manifest, t0.Add(48*time.Hour), tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PublishLatest(ctx, []Region{{"eu", st}}, l); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.verifier(t, 0).Fetch(ctx, st, t0.Add(24*time.Hour)); err != nil {
		t.Fatalf("refreshed pointer: %v", err)
	}
}

func TestPublishRefusesInconsistentBundle(t *testing.T) {
	tr := newTrust(t, 1, 1)
	b1, b2 := tr.bundle(t, 1), tr.bundle(t, 2)
	p, _ := publisher(t, 1)
	regions := []Region{{"eu", newFS(t)}}
	for name, b := range map[string]*Bundle{
		"pointer of another version": {Manifest: b1.Manifest, ManifestEnvelope: b1.ManifestEnvelope, LatestEnvelope: b2.LatestEnvelope, Files: b1.Files},
		"files of another version":   {Manifest: b1.Manifest, ManifestEnvelope: b1.ManifestEnvelope, LatestEnvelope: b1.LatestEnvelope, Files: b2.Files},
		"missing file":               {Manifest: b1.Manifest, ManifestEnvelope: b1.ManifestEnvelope, LatestEnvelope: b1.LatestEnvelope, Files: map[string][]byte{"model.bin": b1.Files["model.bin"]}},
	} {
		if err := p.Publish(context.Background(), regions, b); err == nil {
			t.Errorf("%s: published", name)
		}
	}
}

func TestForgedNewerPointerDoesNotPinRegion(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	st := newFS(t)
	tr.publishAll(t, st, tr.bundle(t, 1))
	evil := &trust{release: newKey(t), timestamp: newKey(t)}
	if err := st.Put(ctx, LatestKey("vigil-ae"), evil.bundle(t, 1000).LatestEnvelope); err != nil {
		t.Fatal(err)
	}
	// Without the root the publisher cannot tell the forgery from a newer release, and says so
	// instead of reporting success.
	p, _ := publisher(t, 1)
	if err := p.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 2)); !errors.Is(err, ErrUnverified) {
		t.Fatalf("without root: %v, want ErrUnverified", err)
	}
	if _, err := tr.verifier(t, 1).Fetch(ctx, st, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("without root: got %v, want the forged pointer still in place", err)
	}
	// With the root it overwrites the forgery.
	withRoot, err := NewPublisher(PublisherConfig{Attempts: 1, Root: tr.root, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := withRoot.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 2)); err != nil {
		t.Fatal(err)
	}
	if b, err := tr.verifier(t, 1).Fetch(ctx, st, t0); err != nil || b.Manifest.Version != 2 {
		t.Fatalf("with root: %v", err)
	}
	// And a genuine newer pointer still holds it back.
	if err := withRoot.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 3)); err != nil {
		t.Fatal(err)
	}
	if err := withRoot.Publish(ctx, []Region{{"eu", st}}, tr.bundle(t, 2)); err != nil {
		t.Fatal(err)
	}
	if b, err := tr.verifier(t, 1).Fetch(ctx, st, t0); err != nil || b.Manifest.Version != 3 {
		t.Fatalf("genuine newer pointer: %v", err)
	}
}
