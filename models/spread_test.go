package models

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSpreadStats checks that an exact sum of SpreadStats contributions decodes to each root's
// within-user spread, that every bucket takes its root's, and that contributions stay within
// the clip.
func TestSpreadStats(t *testing.T) {
	l := testLayout()
	s, err := NewSpreadStats(l)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	sum := make([]float64, s.Len())
	for u := 0; u < 200; u++ {
		v, err := s.Contribute(testWindows(rng, 5, rng.NormFloat64()))
		if err != nil {
			t.Fatal(err)
		}
		var sq float64
		for i := range v {
			sq += v[i] * v[i]
			sum[i] += v[i]
		}
		if math.Sqrt(sq) > s.Clip() {
			t.Fatalf("device %d: norm %v above the clip %v", u, math.Sqrt(sq), s.Clip())
		}
	}
	scale, err := s.Decode(sum, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	// testWindows: bucket 4 (under the pool 3) spreads by 0.5 within a user, the dense entries
	// by 0.3; buckets 1 and 2 take root 0's spread, which mixes their two means.
	for _, c := range []struct {
		b    int
		want float64
	}{{3, 0.5}, {4, 0.5}, {5, 0.3}, {6, 0.3}} {
		if math.Abs(scale[c.b]/c.want-1) > 0.05 {
			t.Errorf("bucket %d: scale %v, want about %v", c.b, scale[c.b], c.want)
		}
	}
	if scale[1] != scale[0] || scale[2] != scale[0] || !(scale[0] > 0.5) {
		t.Errorf("buckets 0, 1, 2: scales %v, want one scale, wider than a bucket's own", scale[:3])
	}
	// Noise that could explain every device's count leaves every scale at 1.
	scale, err = s.Decode(sum, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for b, v := range scale {
		if v != 1 {
			t.Errorf("bucket %d: scale %v under overwhelming noise, want 1", b, v)
		}
	}
	if _, err := s.Decode(sum[1:], 0, 2); err == nil {
		t.Error("a sum of the wrong length decoded")
	}
	sum[1] = math.NaN()
	if _, err := s.Decode(sum, 0, 2); err == nil {
		t.Error("a NaN sum decoded")
	}
}
