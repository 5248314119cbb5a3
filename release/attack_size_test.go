package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

// signUnchecked signs m and a pointer to it as a thief of the release and timestamp keys can:
// with the keys alone, skipping the checks Sign makes before it signs.
func (tr *trust) signUnchecked(t testing.TB, m *Manifest) *Bundle {
	t.Helper()
	payload, err := marshalCanonical(m)
	if err != nil {
		t.Fatal(err)
	}
	env, err := signEnvelope(TypeManifest, payload, signers(tr.release))
	if err != nil {
		t.Fatal(err)
	}
	menv, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	lenv, err := SignLatestFor(m, t0.Add(6*time.Hour), tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	return &Bundle{Manifest: m, ManifestEnvelope: menv, LatestEnvelope: lenv}
}

// TestAttackHugeDeclaredRelease: a thief of the release key signs a manifest whose artifacts
// declare far more than any release holds, with the true hashes of files of zeros, and serves
// them. Devices used to read every file up to its signed size, each version of it, 16 GiB and
// more per poll. Now the manifest is refused before any artifact is read.
func TestAttackHugeDeclaredRelease(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	for _, tc := range []struct {
		name  string
		sizes []int64
	}{
		{"64 files of 256 MiB", func() []int64 {
			s := make([]int64, MaxArtifacts)
			for i := range s {
				s[i] = store.MaxObjectBytes
			}
			return s
		}()},
		{"one byte over MaxReleaseBytes", []int64{MaxReleaseBytes / 2, MaxReleaseBytes/2 + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manifest{Created: t0, Expires: t0.Add(30 * 24 * time.Hour), Model: "vigil-ae", Version: 7, Parent: 6}
			sums := map[int64]string{}
			var declared int64
			for i, size := range tc.sizes {
				if sums[size] == "" {
					sums[size] = zeroSHA256(size)
				}
				m.Artifacts = append(m.Artifacts, Artifact{Name: fmt.Sprintf("f%02d.bin", i), SHA256: sums[size], Size: size})
				declared += size
			}
			if _, err := Sign(m, tr.release); !errors.Is(err, ErrMalformed) {
				t.Errorf("publisher signed a manifest declaring %d bytes: %v", declared, err)
			}
			b := tr.signUnchecked(t, m)
			f := newS3Fake(t)
			// Enough to see that a device reads files, and not so much that one without a bound
			// runs out of memory.
			f.limit = 64 << 20
			f.publish(b)
			for _, a := range m.Artifacts {
				f.put(ArtifactKey(m.Model, m.Version, a.Name), fakeVersion{size: a.Size})
			}

			_, err := tr.verifier(t, 1).Fetch(ctx, f.store(), now)
			files := f.sent(ReleasePrefix(m.Model) + "7/artifacts/")
			all := f.sent("")
			t.Logf("declared %d MiB: %v; %d bytes sent, %d of them files", declared>>20, err, all, files)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "MaxReleaseBytes") {
				t.Fatalf("got %v, want ErrMalformed naming MaxReleaseBytes", err)
			}
			if files != 0 {
				t.Fatalf("device read %d bytes of files before refusing the manifest", files)
			}
			// The pointer, and the manifest twice: once alone, once with its other versions.
			if limit := int64(len(b.LatestEnvelope) + 2*len(b.ManifestEnvelope)); all > limit {
				t.Fatalf("device read %d bytes, more than the pointer and manifest (%d)", all, limit)
			}
		})
	}
}

// TestManifestReleaseBytes: a manifest may declare up to MaxReleaseBytes of artifacts, not one
// byte more, however the sum is split or overflows.
func TestManifestReleaseBytes(t *testing.T) {
	tr := newTrust(t, 1, 1)
	const half = MaxReleaseBytes / 2
	for _, tc := range []struct {
		name  string
		sizes []int64
		ok    bool
	}{
		{"at the limit", []int64{half, MaxReleaseBytes - half}, true},
		{"one byte over", []int64{half, MaxReleaseBytes - half + 1}, false},
		{"one file over", []int64{MaxReleaseBytes + 1}, false},
		{"sum overflows int64", []int64{1 << 62, 1 << 62, 1 << 62}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &Manifest{Created: t0, Expires: t0.Add(time.Hour), Model: "vigil-ae", Version: 1}
			for i, size := range tc.sizes {
				m.Artifacts = append(m.Artifacts, Artifact{Name: fmt.Sprintf("f%d", i), SHA256: strings.Repeat("0", 64), Size: size})
			}
			env, err := Sign(m, tr.release)
			if tc.ok != (err == nil) || !tc.ok && !errors.Is(err, ErrMalformed) {
				t.Fatalf("Sign: %v, want ok=%v or ErrMalformed", err, tc.ok)
			}
			if !tc.ok {
				env = tr.signUnchecked(t, m).ManifestEnvelope
			}
			if _, err := VerifyDocument(tr.root, env); tc.ok != (err == nil) {
				t.Fatalf("VerifyDocument: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestAttackArtifactSize: whoever controls a region's bucket serves a file of another size than
// the manifest signs, and lies about it in the listing or the response's header. The device
// reads no more than the signed size and one byte, and refuses the file with ErrHashMismatch.
//
// A release refused so is not fetched again by the same device before a back-off ends (see
// TestRefusedBackoff), and every poll meanwhile reports it refused: a thief of the release key
// would otherwise have every poll read it again.
func TestAttackArtifactSize(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	b := tr.bundle(t, 1)
	key := ArtifactKey("vigil-ae", 1, "model.bin")
	signed := int64(len(b.Files["model.bin"]))
	const big = 64 << 20
	for _, tc := range []struct {
		name   string
		served fakeVersion
		want   string
	}{
		{"larger, listed as it is", fakeVersion{size: big}, "larger than its signed"},
		{"larger, listed as the signed size", fakeVersion{size: big, listed: signed, hold: true}, "larger than its signed"},
		{"larger, Content-Length the signed size", fakeVersion{size: big, listed: signed, announced: signed}, "sha256"},
		{"shorter", fakeVersion{data: []byte("short")}, "is 5 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newS3Fake(t)
			f.publish(b)
			f.objects[key] = []fakeVersion{tc.served}
			v := tr.verifier(t, 0)
			_, err := v.Fetch(ctx, f.store(), now)
			t.Logf("%v; %d bytes of %s sent", err, f.sent(key), key)
			if !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrHashMismatch naming %s and %q", err, key, tc.want)
			}
			// Each of the two reads (the oldest version, then the versions) may take one byte
			// past the signed size.
			n := f.sent(key)
			if n > 2*(signed+1) {
				t.Fatalf("device read %d bytes of a file signed at %d", n, signed)
			}
			// The next poll reads none of it again: a copy read and refused is refused again
			// until its back-off ends, one too large again from its size.
			_, err = v.Fetch(ctx, f.store(), now)
			if !errors.Is(err, ErrHashMismatch) || f.sent(key) != n {
				t.Fatalf("the next poll: %v, %d more bytes of %s read; want none", err, f.sent(key)-n, key)
			}
		})
	}
}

// TestAttackJunkVersions: whoever holds a region's bucket credentials adds versions of junk
// under a release's file, each of its signed size, so that the listing cannot tell them apart.
// Devices used to read MaxObjectVersions versions of every file before checking any. Now they
// read the oldest alone and stop when it verifies, read the others only when it does not, and
// never read more in one Fetch than its budget (MaxFetchBytes, lowered here).
func TestAttackJunkVersions(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	const size = 2 << 20 // larger than a document, so that a budget can pay for those and not for it
	weights := make([]byte, size)
	for i := range weights {
		weights[i] = byte(rand.N(256))
	}
	// a.bin comes first: a device that checked the budget file by file would read it before
	// finding that model.bin does not fit.
	small := bytes.Repeat([]byte("feature scaler "), 1<<12)
	b, err := Build(tr.spec(1, map[string][]byte{"a.bin": small, "model.bin": weights}), tr.release, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	key := ArtifactKey("vigil-ae", 1, "model.bin")
	files := ReleasePrefix("vigil-ae") + "1/artifacts/"
	junk := fakeVersion{size: size}
	genuine := fakeVersion{data: weights}
	other := int64(len(small))
	for _, tc := range []struct {
		name     string
		versions []fakeVersion // of model.bin, oldest first
		budget   int64         // 0: MaxFetchBytes
		ok       bool
		sent     int64 // at most this many bytes of the files
	}{
		{"junk after the genuine version", append([]fakeVersion{genuine}, repeat(junk, MaxObjectVersions-1)...), 0, true, other + size},
		{"junk before the genuine version", append(repeat(junk, MaxObjectVersions-1), genuine), 0, true, other + (MaxObjectVersions+1)*size},
		{"junk before, over the budget", append(repeat(junk, MaxObjectVersions-1), genuine), 8 << 20, false, 8 << 20},
		// The documents fit, the files (with the listing their reads reserve) do not: none
		// is read.
		{"files larger than the budget", []fakeVersion{genuine}, size + store.MaxListingBytes + 16<<10, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newS3Fake(t)
			f.publish(b)
			f.objects[key] = tc.versions
			v := tr.verifier(t, 0)
			v.fetchBudget = tc.budget
			got, err := v.Fetch(ctx, f.store(), now)
			t.Logf("%v; %d bytes of model.bin sent, %d of files, %d in all", err, f.sent(key), f.sent(files), f.sent(""))
			if tc.ok && (err != nil || !bytes.Equal(got.Files["model.bin"], weights)) {
				t.Fatalf("device did not take the genuine version: %v", err)
			}
			if !tc.ok && (!errors.Is(err, store.ErrTooLarge) || !strings.Contains(err.Error(), "MaxFetchBytes")) {
				t.Fatalf("got %v, want the fetch's budget spent (store.ErrTooLarge)", err)
			}
			if n := f.sent(files); n > tc.sent {
				t.Fatalf("device read %d bytes of files of %d, at most %d expected", n, other+size, tc.sent)
			}
			if tc.budget != 0 && f.sent("") > tc.budget {
				t.Fatalf("device read %d bytes in one fetch with a budget of %d", f.sent(""), tc.budget)
			}
		})
	}
}

func repeat(v fakeVersion, n int) []fakeVersion {
	out := make([]fakeVersion, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// flakyVersions is a versioned store whose failAt-th GetVersions of key fails, as a read that
// times out does.
type flakyVersions struct {
	*store.MinIO
	key           string
	calls, failAt int
}

func (f *flakyVersions) GetVersions(ctx context.Context, key string, limit int64, max int) ([][]byte, error) {
	if key == f.key {
		if f.calls++; f.calls == f.failAt {
			return nil, context.DeadlineExceeded
		}
	}
	return f.MinIO.GetVersions(ctx, key, limit, max)
}

// TestJunkFirstThenAFailedReadKeepsTheRelease: junk was written under a file's key before the
// genuine copy, and the poll that found it could not read the other copies (a read timed out,
// or the budget ran out). The release was written off as if every copy had failed, and the
// device ignored the genuine one until the pointer moved (found by review). Only a release
// whose every copy was read and refused is skipped; the next poll installs this one.
func TestJunkFirstThenAFailedReadKeepsTheRelease(t *testing.T) {
	ctx := context.Background()
	now := t0.Add(time.Hour)
	tr := newTrust(t, 1, 1)
	weights := make([]byte, 2<<20)
	for i := range weights {
		weights[i] = byte(rand.N(256))
	}
	b, err := Build(tr.spec(1, map[string][]byte{"model.bin": weights}), tr.release, tr.timestamp)
	if err != nil {
		t.Fatal(err)
	}
	key := ArtifactKey("vigil-ae", 1, "model.bin")
	for _, tc := range []struct {
		name   string
		failAt int
		budget int64
	}{
		{"a read of the other copies fails", 2, 0},
		{"the budget cuts the copies short", 0, 5 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newS3Fake(t)
			f.publish(b)
			f.objects[key] = []fakeVersion{{size: int64(len(weights))}, {data: weights}}
			v := tr.verifier(t, 0)
			v.fetchBudget = tc.budget
			st := &flakyVersions{MinIO: f.store(), key: key, failAt: tc.failAt}
			if _, err := v.Fetch(ctx, st, now); err == nil {
				t.Fatal("the first poll, whose reads failed, took the release")
			}
			v.fetchBudget = 0
			got, err := v.Fetch(ctx, st, now)
			if err != nil || !bytes.Equal(got.Files["model.bin"], weights) {
				t.Fatalf("the next poll, with the store healthy: %v", err)
			}
		})
	}
}

// TestRefusedBackoff: the files of a release refused again and again are read again after 10
// minutes, then twice as long each time, at most every 6 hours; a Verifier remembers at most
// maxRefused releases, and forgets those the floor passes.
func TestRefusedBackoff(t *testing.T) {
	tr := newTrust(t, 1, 1)
	v := tr.verifier(t, 0)
	now := t0
	var gaps []time.Duration
	r := ReleaseRef{Version: 5, ManifestSHA256: "ab"}
	for range 9 {
		if err := v.refuseFiles(r, now, ErrHashMismatch); !errors.Is(err, ErrHashMismatch) {
			t.Fatal(err)
		}
		if v.refusedNow(r, now) == nil || v.refusedNow(r, now.Add(-time.Second)) != nil {
			t.Fatal("refused at its refusal, or not read again under a clock set back")
		}
		next := v.Refused()[0].Retry
		if v.refusedNow(r, next.Add(-time.Second)) == nil || v.refusedNow(r, next) != nil {
			t.Fatalf("refused until %v: wrong at its end", next)
		}
		gaps = append(gaps, next.Sub(now))
		now = next
	}
	m := time.Minute
	want := []time.Duration{10 * m, 20 * m, 40 * m, 80 * m, 160 * m, 320 * m, 360 * m, 360 * m, 360 * m}
	if !slices.Equal(gaps, want) {
		t.Fatalf("back-off %v, want %v", gaps, want)
	}
	for i := range 3 * maxRefused {
		v.refuseFiles(ReleaseRef{Version: uint64(10 + i)}, now, ErrHashMismatch)
	}
	if got := v.Refused(); len(got) != maxRefused || got[0].Version != 10+2*maxRefused {
		t.Fatalf("%d refused remembered, the oldest v%d", len(got), got[0].Version)
	}
	if err := v.SetInstalled(10 + 3*maxRefused - 2); err != nil {
		t.Fatal(err)
	}
	if got := v.Refused(); len(got) != 1 {
		t.Fatalf("%d refused above the floor listed", len(got))
	}
}
