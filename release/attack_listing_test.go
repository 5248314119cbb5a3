package release

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

// TestAttackEndlessVersionListing: a region server serves the genuine
// pointer and objects and answers the listing of the versions of every write-once object, which
// a device reads before the object, with a <Key> that never ends. minio-go decodes a listing
// whole and the budget charged only object bodies, so a device allocated 3.2 GiB from 600 MiB
// of listing in 9 s, and would have read until PollTimeout (two minutes, some 8 GB on a
// loopback). The listing is now cut at store.MaxListingBytes and the fetch fails at once.
func TestAttackEndlessVersionListing(t *testing.T) {
	tr := newTrust(t, 1, 1)
	f := newS3Fake(t)
	f.publish(tr.bundle(t, 1))
	f.endless = true
	f.limit = 256 << 20 // the fake stops there: the code before the fix read it all
	v := tr.verifier(t, 0)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := v.Fetch(ctx, f.store(), t0.Add(time.Hour))
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("Fetch: %v after %v; %d KiB of listing sent, %d MiB allocated", err, time.Since(start).Round(time.Millisecond), f.listedBytes()>>10, alloc>>20)
	if !errors.Is(err, store.ErrTooLarge) || !strings.Contains(err.Error(), "listing") {
		t.Errorf("Fetch against an endless listing: %v, want the listing refused as too large", err)
	}
	// What the kernel buffers counts as sent; the device reads 1 MiB of it.
	if n := f.listedBytes(); n > 32<<20 {
		t.Errorf("the server sent %d MiB of listing to one Fetch", n>>20)
	}
	if alloc > 64<<20 {
		t.Errorf("one Fetch allocated %d MiB against an endless listing", alloc>>20)
	}
}

// TestAttackListingsChargedToBudget: a region server pads every listing with entries of other
// keys under the object's key, each listing under its bound, so that a device reads much more
// listing than objects. The listings are charged to the fetch's budget (MaxFetchBytes, lowered
// here): the device stops when it is spent, where it used to read on, outside the budget.
func TestAttackListingsChargedToBudget(t *testing.T) {
	tr := newTrust(t, 1, 1)
	b := tr.bundle(t, 1)
	// 2.5 MiB: room for every honest read and the listing it reserves, not for three padded
	// listings (900 entries of about 600 bytes, 540 KiB each).
	const budget = 5 << 19
	for _, pad := range []int{0, 900} {
		f := newS3Fake(t)
		f.publish(b)
		f.pad = pad
		v := tr.verifier(t, 0)
		v.fetchBudget = budget
		got, err := v.Fetch(context.Background(), f.store(), t0.Add(time.Hour))
		t.Logf("pad %d: %v; %d KiB of listings, %d KiB of objects", pad, err, f.listedBytes()>>10, f.sent("")>>10)
		if pad == 0 {
			if err != nil || got.Manifest.Version != 1 {
				t.Fatalf("honest listings, within the budget: %v", err)
			}
			continue
		}
		if !errors.Is(err, store.ErrTooLarge) || !strings.Contains(err.Error(), "MaxFetchBytes") {
			t.Errorf("padded listings: %v, want the fetch's budget spent", err)
		}
		if n := f.listedBytes() + f.sent(""); n > budget {
			t.Errorf("the device read %d KiB in one fetch with a budget of %d KiB", n>>10, budget>>10)
		}
	}
}
