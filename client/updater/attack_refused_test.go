package updater

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/release"
)

// TestAttackDamagedFilesAreRetried: for one poll, whoever writes the
// store (no keys needed), or a sync that copies a file halfway, serves a genuine release with a
// damaged params.f64. The device refused it, and then called itself up to date at every poll,
// with nothing in its status, even once the store was repaired, until a restart or the next
// release: a release-long freeze for one error line. Now every poll reports the refusal until
// its back-off ends, the status lists it, and the next poll after the back-off installs the
// repaired release.
func TestAttackDamagedFilesAreRetried(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t)
	fs := newFS(t)
	st := &countingStore{FS: fs, limit: 1 << 30, read: map[string]int64{}}
	base := baseParams(t)
	tr.publishModel(t, fs, 1, base)
	d := newDevice(t, tr, st)
	u := d.open()
	mustPoll(t, u, Installed, 1)

	tr.publishModel(t, fs, 2, shifted(base, 0.01))
	key := release.ArtifactKey(testModel, 2, models.ArtifactParams)
	good, err := fs.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	(&storeFS{fs}).put(t, key, make([]byte, len(good)))
	st.readUnder("")
	start := d.clk.now()
	if _, err := u.Poll(ctx); !errors.Is(err, release.ErrHashMismatch) {
		t.Fatalf("poll of the damaged release: %v, want ErrHashMismatch", err)
	}
	if st.readUnder(key) == 0 {
		t.Fatal("the damaged file was not read")
	}
	s := u.Status()
	if len(s.Refused) != 1 || s.Refused[0].Version != 2 || !s.Refused[0].Retry.Equal(start.Add(release.RefusedRetryMin)) {
		t.Fatalf("status after the refusal: %+v", s)
	}

	(&storeFS{fs}).put(t, key, good) // the store is repaired
	for i := 1; i <= 3; i++ {
		d.clk.set(start.Add(time.Duration(i) * time.Minute))
		ev, err := u.Poll(ctx)
		t.Logf("poll %d min after the refusal: %v v%d, %v", i, ev.Kind, ev.Version, err)
		if !errors.Is(err, release.ErrHashMismatch) {
			t.Fatalf("poll %d min after the refusal: %v v%d, %v; want the refusal reported again", i, ev.Kind, ev.Version, err)
		}
		if n := st.readUnder(key); n != 0 {
			t.Fatalf("poll %d min after the refusal read %d bytes of the refused file again", i, n)
		}
	}
	d.clk.set(start.Add(release.RefusedRetryMin))
	mustPoll(t, u, Staged, 2)
	if s := u.Status(); s.Candidate != 2 || len(s.Refused) != 0 {
		t.Fatalf("status after the retry: %+v", s)
	}
}

// TestAttackDamagedFilesRetryRate: the store goes on serving the damaged file, to make devices
// download the release again and again. Polled every minute for five hours, the device reads
// it at the back-off's steps alone (after 0, 10, 30, 70 and 150 minutes), and reports the
// refusal at every poll.
func TestAttackDamagedFilesRetryRate(t *testing.T) {
	ctx := context.Background()
	tr := newTrust(t)
	fs := newFS(t)
	st := &countingStore{FS: fs, limit: 1 << 30, read: map[string]int64{}}
	base := baseParams(t)
	tr.publishModel(t, fs, 1, base)
	d := newDevice(t, tr, st)
	u := d.open()
	mustPoll(t, u, Installed, 1)
	tr.publishModel(t, fs, 2, shifted(base, 0.01))
	key := release.ArtifactKey(testModel, 2, models.ArtifactParams)
	(&storeFS{fs}).rewrite(t, key, func(b []byte) []byte { b[0] ^= 1; return b })
	st.readUnder("")
	start := d.clk.now()
	var reads []time.Duration
	for m := 0; m < 5*60; m++ {
		d.clk.set(start.Add(time.Duration(m) * time.Minute))
		ev, err := u.Poll(ctx)
		if !errors.Is(err, release.ErrHashMismatch) {
			t.Fatalf("poll at %d min: %v v%d, %v; want the refusal", m, ev.Kind, ev.Version, err)
		}
		if st.readUnder(key) > 0 {
			reads = append(reads, time.Duration(m)*time.Minute)
		}
	}
	t.Logf("the damaged file read at %v", reads)
	want := []time.Duration{0, 10 * time.Minute, 30 * time.Minute, 70 * time.Minute, 150 * time.Minute}
	if len(reads) != len(want) {
		t.Fatalf("the damaged file read %d times in 300 polls, at %v; want %v", len(reads), reads, want)
	}
	for i := range want {
		if reads[i] != want[i] {
			t.Fatalf("the damaged file read at %v, want %v", reads, want)
		}
	}
}
