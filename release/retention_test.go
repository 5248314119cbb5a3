package release

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/store"
)

// manifests returns the versions of vigil-ae whose manifest st holds.
func manifests(t *testing.T, st store.Store, upTo uint64) []uint64 {
	t.Helper()
	var have []uint64
	for v := uint64(1); v <= upTo; v++ {
		if _, err := st.Get(context.Background(), ManifestKey("vigil-ae", v)); err == nil {
			have = append(have, v)
		} else if !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	return have
}

// TestPruneReleases: retention keeps the newest releases and the one the pointer names, even
// when newer releases were published without moving the pointer; a store without a readable
// pointer is left alone.
func TestPruneReleases(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t, 1, 1)
	for _, tc := range []struct {
		name        string
		pointer     uint64 // the pointer names this version; releases up to 5 are stored
		keep        int
		skip        uint64
		wantDeleted []uint64
		wantLeft    []uint64
		wantErr     bool
	}{
		{"keep 2", 5, 2, 0, []uint64{1, 2, 3}, []uint64{4, 5}, false},
		{"keep all", 5, 0, 0, nil, []uint64{1, 2, 3, 4, 5}, false},
		{"more than stored", 5, 9, 0, nil, []uint64{1, 2, 3, 4, 5}, false},
		{"pointer behind the newest", 3, 1, 0, []uint64{1, 2, 4}, []uint64{3, 5}, false},
		{"skipped version", 5, 1, 2, []uint64{1, 3, 4}, []uint64{2, 5}, false},
		{"no pointer", 0, 1, 0, nil, []uint64{1, 2, 3, 4, 5}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newFS(t)
			p, _ := publisher(t, 1)
			regions := []Region{{Name: "test", Store: st}}
			for v := uint64(1); v <= 5; v++ {
				b := tr.bundle(t, v)
				var err error
				if v <= tc.pointer {
					err = p.Publish(ctx, regions, b)
				} else {
					err = p.PublishFiles(ctx, regions, b.ManifestEnvelope, b.Files)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := PruneReleases(ctx, st, "vigil-ae", tc.keep, func(v uint64) bool { return v == tc.skip })
			if (err != nil) != tc.wantErr {
				t.Fatalf("PruneReleases: %v, want error %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got.Deleted, tc.wantDeleted) || got.Retained != nil {
				t.Errorf("deleted %v, retained %v; want deleted %v", got.Deleted, got.Retained, tc.wantDeleted)
			}
			if left := manifests(t, st, 5); !reflect.DeepEqual(left, tc.wantLeft) {
				t.Errorf("releases left %v, want %v", left, tc.wantLeft)
			}
			keys, _ := st.List(ctx, ReleasePrefix("vigil-ae"))
			for _, k := range keys {
				for _, v := range got.Deleted {
					if k == ArtifactKey("vigil-ae", v, "model.bin") {
						t.Errorf("%s left behind a deleted release", k)
					}
				}
			}
		})
	}
}

// TestOutboxRetention publishes five releases through an outbox keeping two, to a filesystem
// region (old releases deleted) and to a MinIO region whose releases are under object lock
// (every release retained, reported, nothing fails), and checks that a device still on the
// first version, and one on the fourth, update to the newest from either region.
func TestOutboxRetention(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name         string
		store        func(t *testing.T) store.Store
		wantLeft     []uint64
		wantRetained bool
	}{
		{"filesystem", func(t *testing.T) store.Store { return newFS(t) }, []uint64{4, 5}, false},
		{"minio object lock", func(t *testing.T) store.Store { return miniotest.Shared(t, "vigil-keep") }, []uint64{1, 2, 3, 4, 5}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.store(t)
			tr := newTrust(t, 1, 1)
			tr.publishAll(t, st)
			clk := &clock{t: t0}
			var events []OutboxEvent
			o, err := NewOutbox(OutboxConfig{
				Dir: t.TempDir(), Model: "vigil-ae", Regions: []Region{{"eu", st}}, ReleaseKey: tr.release, TimestampKey: tr.timestamp,
				Root: tr.rootEnv, Now: clk.now, Keep: 2, Events: func(e OutboxEvent) { events = append(events, e) },
			})
			if err != nil {
				t.Fatal(err)
			}
			for v := uint64(1); v <= 5; v++ {
				tr.submit(t, o, v)
				if err := o.Flush(ctx); err != nil {
					t.Fatalf("v%d: %v", v, err)
				}
			}
			if left := manifests(t, st, 5); !reflect.DeepEqual(left, tc.wantLeft) {
				t.Errorf("releases left %v, want %v", left, tc.wantLeft)
			}
			var retained []uint64
			for _, e := range events {
				if e.PruneErr != nil {
					t.Errorf("v%d: prune: %v", e.Version, e.PruneErr)
				}
				retained = append(retained, e.Pruned.Retained...)
			}
			// Refused versions wait a day before they are tried again: each is reported once.
			if tc.wantRetained && !reflect.DeepEqual(retained, []uint64{1, 2, 3}) {
				t.Errorf("retained reported %v, want [1 2 3] once each", retained)
			}
			for _, installed := range []uint64{1, 4} {
				b, err := tr.verifier(t, installed).Fetch(ctx, st, clk.now())
				if err != nil || b.Manifest.Version != 5 {
					t.Fatalf("device on v%d after pruning: %v, want v5", installed, err)
				}
			}
		})
	}
}
