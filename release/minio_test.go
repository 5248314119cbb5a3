package release

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/store"
)

// TestMinIOPublishSurvivesServerCrash stops the eu MinIO process in the middle of publishing a
// release (after the first artifact is written) and restarts it during the publisher's backoff.
// The release must appear in eu once and complete, the us region must not wait for eu, and a
// device reading eu must never accept anything while eu is half-written or down.
func TestMinIOPublishSurvivesServerCrash(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	srv := miniotest.Start(t)
	eu := srv.Store(t, "vigil-eu")
	us := miniotest.Shared(t, "vigil-us")
	tr := newTrust(t, 1, 1)
	tr.publishAll(t, eu, tr.bundle(t, 1))
	tr.publishAll(t, us, tr.bundle(t, 1))

	var (
		mu          sync.Mutex
		delays      []time.Duration
		whileDown   error
		restarts    int
		usDoneFirst bool
	)
	usDone := make(chan struct{})
	crashing := &miniotest.AfterWrites{Store: eu, N: 1, Hook: func() {
		srv.Stop()
		// While eu is down a device there gets an error, never a release.
		_, err := tr.verifier(t, 1).Fetch(ctx, eu, now)
		mu.Lock()
		whileDown = err
		mu.Unlock()
	}}
	p, err := NewPublisher(PublisherConfig{
		Attempts:       10,
		InitialBackoff: 50 * time.Millisecond,
		MaxBackoff:     time.Second,
		Sleep: func(ctx context.Context, d time.Duration) error {
			mu.Lock()
			delays = append(delays, d)
			n := len(delays)
			mu.Unlock()
			if n == 2 { // eu has failed twice: bring it back
				select {
				case <-usDone:
					usDoneFirst = true
				case <-time.After(30 * time.Second):
				}
				if err := srv.Restart(); err != nil {
					t.Error(err)
				}
				restarts++
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b2 := tr.bundle(t, 2)
	errc := make(chan error, 2)
	go func() { errc <- p.Publish(ctx, []Region{{"eu", crashing}}, b2) }()
	go func() { errc <- p.Publish(ctx, []Region{{"us", us}}, b2); close(usDone) }()
	for i := 0; i < 2; i++ {
		if err := <-errc; err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	if whileDown == nil || errors.Is(whileDown, ErrUpToDate) {
		t.Fatalf("device fetch while eu was down returned %v, want a store error", whileDown)
	}
	if restarts != 1 || !usDoneFirst {
		t.Fatalf("restarts %d, us finished before eu came back: %v", restarts, usDoneFirst)
	}
	t.Logf("eu backoffs %v; fetch while down: %v", delays, whileDown)

	for name, st := range map[string]*store.MinIO{"eu": eu, "us": us} {
		b, err := tr.verifier(t, 1).Fetch(ctx, st, now)
		if err != nil || b.Manifest.Version != 2 {
			t.Fatalf("%s: device fetch after publication: %v", name, err)
		}
		vs := miniotest.Versions(t, st, ReleasePrefix("vigil-ae")+"2/")
		if len(vs) != 3 {
			t.Fatalf("%s: v2 objects %v, want 2 artifacts and a manifest", name, vs)
		}
		for k, n := range vs {
			if n != 1 {
				t.Errorf("%s: %s stored %d times, want once", name, k, n)
			}
		}
		if n := miniotest.Versions(t, st, LatestKey("vigil-ae"))[LatestKey("vigil-ae")]; n != 2 {
			t.Errorf("%s: pointer has %d versions, want 2 (v1, v2)", name, n)
		}
	}
}

// TestMinIORegionDownThenRestarted publishes while one region's server is stopped: the other
// region completes, the down region is reported, and publishing again after a restart completes
// it once.
func TestMinIORegionDownThenRestarted(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	srv := miniotest.Start(t)
	eu := srv.Store(t, "vigil-eu")
	us := miniotest.Shared(t, "vigil-us")
	tr := newTrust(t, 1, 1)
	tr.publishAll(t, eu)
	tr.publishAll(t, us)
	srv.Stop()

	b := tr.bundle(t, 1)
	p, ns := publisher(t, 3)
	err := p.Publish(ctx, []Region{{"eu", eu}, {"us", us}}, b)
	var re *RegionError
	if !errors.As(err, &re) || re.Region != "eu" || re.Attempts != 3 || strings.Contains(err.Error(), "region us") {
		t.Fatalf("publish with eu down: %v", err)
	}
	t.Logf("eu down: %v (backoffs %v)", err, ns.delays)
	if got, err := tr.verifier(t, 0).Fetch(ctx, us, now); err != nil || got.Manifest.Version != 1 {
		t.Fatalf("us: %v", err)
	}

	if err := srv.Restart(); err != nil {

		t.Error(err)

	}
	if _, err := tr.verifier(t, 0).Fetch(ctx, eu, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("eu before the retry: %v, want no release yet", err)
	}
	if err := p.Publish(ctx, []Region{{"eu", eu}, {"us", us}}, b); err != nil {
		t.Fatalf("publish after restart: %v", err)
	}
	got, err := tr.verifier(t, 0).Fetch(ctx, eu, now)
	if err != nil || got.Manifest.Version != 1 {
		t.Fatalf("eu after restart: %v", err)
	}
	for k, n := range miniotest.Versions(t, eu, "releases/") {
		if n != 1 {
			t.Errorf("eu: %s stored %d times", k, n)
		}
	}
}

// TestMinIOTamperedArtifactRefused overwrites an artifact on a real bucket. Object lock keeps
// the signed version, but S3 lets anyone with write access add a newer version under the same
// key: the device reads the versions oldest first and takes the one whose hash the manifest
// signs, so the forgery never reaches it; a store holding only the forgery is refused by hash.
func TestMinIOTamperedArtifactRefused(t *testing.T) {
	ctx := context.Background()
	st := miniotest.Shared(t, "vigil-us")
	tr := newTrust(t, 1, 1)
	tr.publishAll(t, st, tr.bundle(t, 1))
	key := ArtifactKey("vigil-ae", 1, "model.bin")
	if err := st.Put(ctx, key, []byte("weights of version 1, backdoored")); err != nil {
		t.Fatal(err)
	}
	b, err := tr.verifier(t, 0).Fetch(ctx, st, t0)
	if err != nil || string(b.Files["model.bin"]) != "weights of version 1" {
		t.Fatalf("device over a forged newer version: %v", err)
	}
	if n := miniotest.Versions(t, st, key)[key]; n != 2 {
		t.Fatalf("%s has %d versions, want the locked original and the forgery", key, n)
	}
	// A store without version history (here a directory) holding only the forgery.
	fs := newFS(t)
	tr.publishAll(t, fs, tr.bundle(t, 1))
	if err := fs.Put(ctx, key, []byte("weights of version 1, backdoored")); err != nil {
		t.Fatal(err)
	}
	_, err = tr.verifier(t, 0).Fetch(ctx, fs, t0)
	if !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), key) {
		t.Fatalf("got %v, want ErrHashMismatch naming %s", err, key)
	}
}
