package release

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/store"
)

// rawPut writes a new version of key with the MinIO client directly, as someone holding the
// bucket's root credentials would: no condition, optionally with its own compliance lock.
func rawPut(t *testing.T, st *store.MinIO, key string, data []byte, lock bool) {
	t.Helper()
	opts := minio.PutObjectOptions{DisableMultipart: true, SendContentMd5: true}
	if lock {
		opts.Mode = minio.Compliance
		opts.RetainUntilDate = time.Now().Add(24 * time.Hour)
	}
	if _, err := st.Client().PutObject(context.Background(), st.Bucket(), key, bytes.NewReader(data), int64(len(data)), opts); err != nil {
		t.Fatal(err)
	}
}

// TestAttackObjectLockMinIO is issue 15, item 3, against real MinIO with the root credentials
// (which object lock binds, and nothing else): a plain PUT over a locked manifest and
// artifact, a DELETE of an artifact (a delete marker), and junk under root/2.root.json with its
// own compliance lock before the real root v2. Devices read write-once objects by version,
// oldest first, taking the first that verifies, so none of it stops them; the publisher
// republishes without a conflict and adds the genuine root v2 beside the junk.
func TestAttackObjectLockMinIO(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	st := miniotest.Shared(t, "vigil-lock")
	tr := newTrust(t, 1, 1)
	b1 := tr.bundle(t, 1)
	tr.publishAll(t, st, b1)
	p, err := NewPublisher(PublisherConfig{Attempts: 1, Root: tr.root, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	regions := []Region{{"eu", st}}

	// Plain PUTs make new current versions; a DELETE adds a delete marker.
	rawPut(t, st, ManifestKey("vigil-ae", 1), []byte("junk manifest"), false)
	rawPut(t, st, ArtifactKey("vigil-ae", 1, "model.bin"), []byte("backdoored weights"), false)
	if err := st.Client().RemoveObject(ctx, st.Bucket(), ArtifactKey("vigil-ae", 1, "scaler.bin"), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := tr.verifier(t, 0).Fetch(ctx, st, now)
	if err != nil || b.Manifest.Version != 1 || !bytes.Equal(b.Files["model.bin"], b1.Files["model.bin"]) {
		t.Fatalf("device after plain PUT and DELETE: %v", err)
	}
	// Republishing is not a conflict: the genuine versions are there.
	if err := p.Publish(ctx, regions, b1); err != nil {
		t.Fatalf("republish after plain PUT and DELETE: %v", err)
	}

	// Junk under the next root's key, locked: bytes that are no envelope, and a root v2 the
	// attacker signed with keys of their own. Devices go on under root v1.
	rawPut(t, st, RootKey(2), []byte(`{"junk":true}`), true)
	mallory := newKey(t)
	rawPut(t, st, RootKey(2), rotate(t, tr.root, 2, mallory, mallory, mallory, mallory), true)
	if b, err := tr.verifier(t, 0).Fetch(ctx, st, now); err != nil || b.Manifest.Version != 1 {
		t.Fatalf("device with junk at root/2: %v", err)
	}
	// The real root v2 (new release key) is published beside the junk, and devices walk to it.
	rel2 := newKey(t)
	env2 := rotate(t, tr.root, 2, tr.rootKeys[0], rel2, tr.timestamp, tr.rootKeys[0])
	// The publisher trusts root v1, the predecessor: the attacker's root does not follow it.
	if err := p.PublishRoot(ctx, regions, env2); err != nil {
		t.Fatalf("publish root v2 over junk: %v", err)
	}
	root2, err := ParseTrustedRoot(env2)
	if err != nil {
		t.Fatal(err)
	}
	b2, err := Build(tr.spec(2, map[string][]byte{"model.bin": []byte("weights of version 2")}), rel2, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WithRoot(root2, nil).Publish(ctx, regions, b2); err != nil {
		t.Fatal(err)
	}
	v := tr.verifier(t, 1)
	if b, err := v.Fetch(ctx, st, now); err != nil || b.Manifest.Version != 2 || v.Root().Version != 2 {
		t.Fatalf("device after root v2 beside junk: %v", err)
	}
	if n := miniotest.Versions(t, st, RootKey(2))[RootKey(2)]; n != 3 {
		t.Fatalf("%d versions of root/2, want two junk + genuine", n)
	}
}

// zeros is an io.Reader of n zero bytes that allocates nothing.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n == 0 {
		return 0, io.EOF
	}
	k := min(int64(len(p)), z.n)
	clear(p[:k])
	z.n -= k
	return int(k), nil
}

// TestAttackOversizedPointerMinIO is issue 15, item 4, against real MinIO: a 200 MiB object
// where the 1 MiB pointer belongs used to be read whole (410 MiB allocated) before it was
// refused. Now the size the server announces is refused before the body is read.
func TestAttackOversizedPointerMinIO(t *testing.T) {
	ctx := context.Background()
	st := miniotest.Shared(t, "vigil-big")
	tr := newTrust(t, 1, 1)
	tr.publishAll(t, st, tr.bundle(t, 1))
	const size = 200 << 20
	if _, err := st.Client().PutObject(ctx, st.Bucket(), LatestKey("vigil-ae"), &zeros{size}, size,
		minio.PutObjectOptions{DisableMultipart: true}); err != nil {
		t.Fatal(err)
	}
	v := tr.verifier(t, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err := v.Fetch(ctx, st, t0.Add(time.Hour))
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("200 MiB pointer refused in %v after allocating %d KiB", elapsed, alloc>>10)
	if !errors.Is(err, store.ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if alloc > 4<<20 {
		t.Fatalf("allocated %d bytes refusing a 200 MiB pointer", alloc)
	}
}

// TestAttackPlainPutOverKeyEpochMinIO: a plain PUT with the root credentials over a published
// key epoch and its collective key. FetchKeyEpoch read only the newest version, so `vigil
// release status` failed on the junk for as long as it stayed, while devices and publish read
// past it (a review). Now it takes the first version that verifies, oldest first, as Fetch
// does; and publishing again puts a copy of the genuine document back on top (settle said it
// did, but returned at the genuine version below the junk), so that a plain GET returns it, also
// after a delete marker. Publishing once more adds nothing.
func TestAttackPlainPutOverKeyEpochMinIO(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	st := miniotest.Shared(t, "vigil-epoch")
	tr := newTrust(t, 1, 1)
	b1 := tr.bundle(t, 1)
	tr.publishAll(t, st, b1)
	p, err := NewPublisher(PublisherConfig{Attempts: 1, Root: tr.root, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	regions := []Region{{"eu", st}}
	pk := bytes.Repeat([]byte{7}, 4096)
	doc, err := Sign(NewKeyEpoch(1, "ckks-pn14", pk, t0, t0.Add(90*24*time.Hour)), tr.release)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.PublishKeyEpoch(ctx, regions, doc, pk); err != nil {
		t.Fatal(err)
	}
	rawPut(t, st, KeyEpochKey(1), []byte(`{"junk":true}`), false)
	rawPut(t, st, CollectiveKeyKey(1), []byte("not the key"), false)
	if err := st.Client().RemoveObject(ctx, st.Bucket(), ManifestKey("vigil-ae", 1), minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	k, key, err := tr.verifier(t, 0).FetchKeyEpoch(ctx, st, 1, now)
	if err != nil || k.Epoch != 1 || !bytes.Equal(key, pk) {
		t.Fatalf("FetchKeyEpoch under a plain PUT: %v", err)
	}
	want := map[string][]byte{KeyEpochKey(1): doc, CollectiveKeyKey(1): pk, ManifestKey("vigil-ae", 1): b1.ManifestEnvelope}
	for i := 0; i < 2; i++ {
		if err := p.PublishKeyEpoch(ctx, regions, doc, pk); err != nil {
			t.Fatalf("publish key epoch again: %v", err)
		}
		if err := p.Publish(ctx, regions, b1); err != nil {
			t.Fatalf("publish release again: %v", err)
		}
		for key, data := range want {
			if got, err := st.Get(ctx, key); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("run %d: a plain GET of %s: %.40q, %v; want the genuine document", i, key, got, err)
			}
			// genuine, junk or delete marker, genuine: the copy is added once.
			if n := miniotest.Versions(t, st, key)[key]; n != 3 {
				t.Fatalf("run %d: %s has %d versions, want 3", i, key, n)
			}
		}
	}
	if _, _, err := tr.verifier(t, 0).FetchKeyEpoch(ctx, st, 1, now); err != nil {
		t.Fatal(err)
	}
}
