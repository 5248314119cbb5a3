package he

import "testing"

func TestReplayFilter(t *testing.T) {
	rng := testRNG(t)
	fp := func() (out [32]byte) {
		for i := range out {
			out[i] = byte(rng.Uint32())
		}
		return out
	}
	f := newReplayFilter()
	added := make([][32]byte, MaxContributors)
	for i := range added {
		added[i] = fp()
		if f.contains(added[i]) {
			t.Fatalf("fresh fingerprint %d reported as seen after %d insertions", i, i)
		}
		f.add(added[i])
	}
	for i, a := range added {
		if !f.contains(a) {
			t.Fatalf("fingerprint %d forgotten", i)
		}
	}
	// At the documented rate (< 3e-12), 100,000 fresh fingerprints give no false positive.
	for i := range 100_000 {
		if f.contains(fp()) {
			t.Fatalf("false positive after %d fresh fingerprints", i)
		}
	}
	f.reset()
	if f.contains(added[0]) {
		t.Fatal("reset filter still contains a fingerprint")
	}
}
