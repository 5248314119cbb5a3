package updater

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// countingStore is a store whose reads the test counts: the bytes each read returned, by key.
// It refuses reads once limit bytes have been read, so that a device without a bound (the
// code before the fix) fails the test instead of exhausting memory.
type countingStore struct {
	*store.FS
	limit int64

	mu    sync.Mutex
	read  map[string]int64
	total int64
}

var _ store.LimitedGetter = (*countingStore)(nil)

func (c *countingStore) Get(ctx context.Context, key string) ([]byte, error) {
	return c.GetLimit(ctx, key, store.MaxObjectBytes)
}

func (c *countingStore) GetLimit(ctx context.Context, key string, limit int64) ([]byte, error) {
	c.mu.Lock()
	over := c.total >= c.limit
	c.mu.Unlock()
	if over {
		return nil, fmt.Errorf("test store: %d bytes read already, refusing %s", c.limit, key)
	}
	data, err := c.FS.GetLimit(ctx, key, limit)
	c.mu.Lock()
	c.read[key] += int64(len(data))
	c.total += int64(len(data))
	c.mu.Unlock()
	return data, err
}

// readUnder returns the bytes read of keys with prefix, and resets the counts.
func (c *countingStore) readUnder(prefix string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for k, b := range c.read {
		if strings.HasPrefix(k, prefix) {
			n += b
		}
	}
	clear(c.read)
	return n
}

// signManifest signs m and a pointer to it as a thief of the release and timestamp keys can:
// DSSE over the canonical encoding, without the checks release.Sign makes first.
func (tr *trust) signManifest(t testing.TB, m *release.Manifest) (manifest, latest []byte) {
	t.Helper()
	payload, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.release.Sign(release.PAE(release.TypeManifest, payload), "")
	if err != nil {
		t.Fatal(err)
	}
	env := release.Envelope{Payload: payload, PayloadType: release.TypeManifest, Signatures: []release.Signature{{KeyID: tr.release.ID(), Sig: s}}}
	if manifest, err = env.Marshal(); err != nil {
		t.Fatal(err)
	}
	if latest, err = release.SignLatestFor(m, t0.Add(6*time.Hour), tr.timestamp); err != nil {
		t.Fatal(err)
	}
	return manifest, latest
}

// sparse makes the file of key in fs size bytes of zeros, without writing them.
func sparse(t testing.TB, fs *store.FS, key string, size int64) {
	t.Helper()
	path := filepath.Join(fs.Dir(), filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func zeroSHA256(n int64) string {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for ; n > 0; n -= int64(len(buf)) {
		h.Write(buf[:min(n, int64(len(buf)))])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestAttackReleaseSize is the review's finding: a device had no limit of its own on a
// release's total size, so a thief of the release key could sign a manifest of 64 files of
// 256 MiB (with the true hashes of files of zeros) and have every device read 16 GiB per poll.
// Now Poll refuses that manifest before it reads a file. Whoever controls the store can still
// serve a file of another size than the signed one: it is refused, and no more than the signed
// size is read.
func TestAttackReleaseSize(t *testing.T) {
	params := release.ArtifactKey(testModel, 2, models.ArtifactParams)
	for _, tc := range []struct {
		name   string
		attack func(t *testing.T, tr *trust, fs *store.FS, genuine *release.Bundle)
		want   error
		of     string // keys the count covers (a prefix)
		read   int64  // at most this many bytes of them
	}{
		{"signed manifest declaring 16 GiB", func(t *testing.T, tr *trust, fs *store.FS, _ *release.Bundle) {
			m := &release.Manifest{Created: t0, Expires: t0.AddDate(0, 1, 0), Model: testModel, Version: 2, Parent: 1}
			sum := zeroSHA256(store.MaxObjectBytes)
			for i := range release.MaxArtifacts {
				a := release.Artifact{Name: fmt.Sprintf("f%02d.bin", i), SHA256: sum, Size: store.MaxObjectBytes}
				m.Artifacts = append(m.Artifacts, a)
				sparse(t, fs, release.ArtifactKey(testModel, 2, a.Name), a.Size)
			}
			manifest, latest := tr.signManifest(t, m)
			s := storeFS{fs}
			s.put(t, release.ManifestKey(testModel, 2), manifest)
			s.put(t, release.LatestKey(testModel), latest)
		}, release.ErrMalformed, release.ReleasePrefix(testModel) + "2/artifacts/", 0},
		{"params.f64 larger than signed", func(t *testing.T, tr *trust, fs *store.FS, b *release.Bundle) {
			publish(t, fs, b)
			sparse(t, fs, params, 64<<20)
		}, release.ErrHashMismatch, params, 0},
		{"params.f64 shorter than signed", func(t *testing.T, tr *trust, fs *store.FS, b *release.Bundle) {
			publish(t, fs, b)
			(&storeFS{fs}).put(t, params, b.Files[models.ArtifactParams][:40])
		}, release.ErrHashMismatch, params, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrust(t)
			fs := newFS(t)
			st := &countingStore{FS: fs, limit: 64 << 20, read: map[string]int64{}}
			base := baseParams(t)
			tr.publishModel(t, fs, 1, base)
			d := newDevice(t, tr, st)
			u := d.open()
			mustPoll(t, u, Installed, 1)
			st.readUnder("")

			tc.attack(t, tr, fs, tr.bundle(t, 2, modelFiles(t, 2, testSpec, shifted(base, 0.01), testFeatures)))
			ev, err := u.Poll(context.Background())
			read := st.readUnder(tc.of)
			t.Logf("%v; %d bytes of %s read", err, read, tc.of)
			if !errors.Is(err, tc.want) {
				t.Fatalf("poll: %+v, %v; want an error wrapping %v", ev, err, tc.want)
			}
			if read > tc.read {
				t.Fatalf("device read %d bytes of %s, at most %d expected", read, tc.of, tc.read)
			}
			if s := u.Status(); s.Current != 1 || s.Candidate != 0 || s.Verified != 1 {
				t.Fatalf("after the attack: %+v", s)
			}
		})
	}
}
