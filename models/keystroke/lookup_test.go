package keystroke

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestLookupDivides checks that lookup's multiplication divides by a millisecond exactly over
// the tables' range. By Granlund and Montgomery (PLDI 1994, theorem 4.2), u*m>>k is u/d for
// every u below 2^n when 2^k <= m*d <= 2^k + 2^(k-n); the range is below 2^32. The test also
// looks up durations at and next to every whole millisecond of the range, and random ones.
func TestLookupDivides(t *testing.T) {
	const ms = uint64(time.Millisecond)
	if tabLen*ms > 1<<32 {
		t.Fatalf("the tables reach %d ns, past 2^32", tabLen*ms)
	}
	if lo, hi := uint64(1)<<msShift, uint64(1)<<msShift+1<<(msShift-32); msMagic*ms < lo || msMagic*ms > hi {
		t.Fatalf("msMagic*1e6 = %d, want in [%d, %d]", msMagic*ms, lo, hi)
	}
	var tab [tabLen]float64
	for i := range tab {
		tab[i] = float64(i)
	}
	check := func(u uint64) {
		v, key := lookup(&tab, u)
		if u%ms == 0 && u/ms < tabLen {
			if key != int(u/ms) || v != float64(u/ms) {
				t.Fatalf("lookup(%d) = %v, %d, want %d", u, v, key, u/ms)
			}
		} else if key != noKey {
			t.Fatalf("lookup(%d) = key %d, want noKey", u, key)
		}
	}
	for i := uint64(0); i <= tabLen; i++ {
		for _, u := range []uint64{i*ms - 1, i * ms, i*ms + 1, i*ms + ms/2} {
			check(u)
		}
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for range 1000000 {
		check(rng.Uint64N(2 * tabLen * ms))
		check(rng.Uint64())
	}
}
