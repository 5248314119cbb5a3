package models

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPopulationStatsMatchesExact checks that decoding an exact sum of PopulationStats
// contributions gives the population NewPopulation derives from raw statistics, up to the
// differences of design: every device weighs the same in the within-user variance.
func TestPopulationStatsMatchesExact(t *testing.T) {
	l := testLayout()
	rng := rand.New(rand.NewPCG(3, 3))
	// A public reference from other, made-up users: their spread, not one user's.
	var public []Window
	for u := 0; u < 20; u++ {
		public = append(public, testWindows(rng, 2, 0.3*rng.NormFloat64())...)
	}
	ref, err := ReferenceByKind(l, public)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewPopulationStats(l, ref, PopulationStatsConfig{Clip: 50, MaxVar: 4})
	if err != nil {
		t.Fatal(err)
	}
	raw := make([]float64, ContributionLen(l))
	sum := make([]float64, s.Len())
	for u := 0; u < 400; u++ {
		ws := testWindows(rng, 5, 0.3*rng.NormFloat64())
		c, err := Contribution(l, ws)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Contribute(ws)
		if err != nil {
			t.Fatal(err)
		}
		var sq float64
		for i := range v {
			sq += v[i] * v[i]
		}
		if math.Sqrt(sq) > s.Clip() {
			t.Fatalf("device %d: contribution norm %v above the clip %v", u, math.Sqrt(sq), s.Clip())
		}
		for i := range c {
			raw[i] += c[i]
		}
		for i := range v {
			sum[i] += v[i]
		}
	}
	exact, err := NewPopulation(l, raw, PopulationConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Decode(sum, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Event buckets take their kind's variances: the mean of the buckets' own, weighted by devices.
	pooled := func(b int, v []float64) float64 {
		var num, den float64
		for c := 0; c < l.NumBuckets(); c++ {
			if l.BucketKind[c] == l.BucketKind[b] {
				u := raw[c*statsPerBucket+statUsers]
				num += u * v[c]
				den += u
			}
		}
		return num / den
	}
	for b := 0; b < l.NumBuckets(); b++ {
		wantWithin, wantBetween := exact.Within[b], exact.Between[b]
		if b < l.DenseBase {
			wantWithin, wantBetween = pooled(b, exact.Within), pooled(b, exact.Between)
		}
		tests := []struct {
			name      string
			got, want float64
			tol       float64
		}{
			{"mean", got.Mean[b], exact.Mean[b], 0.01},
			{"within", got.Within[b], wantWithin, 0.15 * wantWithin},
			{"between", got.Between[b], wantBetween, 0.3*wantBetween + 0.01},
		}
		for _, tc := range tests {
			if math.Abs(tc.got-tc.want) > tc.tol {
				t.Errorf("bucket %d %s: %v from the encoded sum, want %v", b, tc.name, tc.got, tc.want)
			}
		}
	}
}

// TestPopulationStatsBudget checks that a device with many buckets describes those it has most
// evidence on and stays within the clip norm.
func TestPopulationStatsBudget(t *testing.T) {
	l := testLayout()
	centres := make([]float64, l.NumBuckets())
	// Room for two buckets of three events (weight 0.6), not for a third of one event (1/3).
	s, err := NewPopulationStats(l, Reference{Center: centres}, PopulationStatsConfig{Clip: 1.05, MaxDev: 0.5, MaxVar: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	w := Window{Dense: []float64{math.NaN(), math.NaN()}, Events: []Event{{1, 0.1}, {1, 0.2}, {1, 0.3}, {4, 0.1}}}
	v, err := s.Contribute([]Window{w})
	if err != nil {
		t.Fatal(err)
	}
	described := func(b int) bool { return v[b*psPerBucket+psUsers] != 0 }
	// Bucket 1 and its root 0 have three events each; 4 and its pooling bucket 3 one each.
	if !described(0) || !described(1) || described(3) || described(4) {
		t.Fatalf("described buckets: 0 %v, 1 %v, 3 %v, 4 %v; want 0 and 1 only", described(0), described(1), described(3), described(4))
	}
}

// TestPopulationStatsNoise checks that noise makes rare buckets unusable rather than wrong, and
// that Backoff gives them their ancestor's model.
func TestPopulationStatsNoise(t *testing.T) {
	l := testLayout()
	centres := make([]float64, l.NumBuckets())
	for _, backoff := range []bool{false, true} {
		s, err := NewPopulationStats(l, Reference{Center: centres}, PopulationStatsConfig{Backoff: backoff})
		if err != nil {
			t.Fatal(err)
		}
		sum := make([]float64, s.Len())
		// 100 devices saw buckets 0 and 1, mean 0.5; 10 saw bucket 2.
		for _, b := range []int{0, 1, 2} {
			n := 100.0
			if b == 2 {
				n = 10
			}
			e := sum[b*psPerBucket:]
			e[psUsers], e[psDev], e[psSquare] = n, 2*0.5*n, 0.3*n
			e[psVar], e[psHasVar] = 0.2*n, 0.5*n
		}
		pop, err := s.Decode(sum, 10) // noise: 3 sd of device counts is 30
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(pop.Mean[1]-0.5) > 1e-9 || !(pop.Within[1] > 0) {
			t.Errorf("bucket 1: mean %v within %v", pop.Mean[1], pop.Within[1])
		}
		if got := !math.IsNaN(pop.Mean[2]); got != backoff {
			t.Errorf("backoff %v: rare bucket modelled %v (mean %v)", backoff, got, pop.Mean[2])
		}
		if backoff && pop.Mean[2] != pop.Mean[0] {
			t.Errorf("rare bucket mean %v, its root's %v", pop.Mean[2], pop.Mean[0])
		}
	}
	s, _ := NewPopulationStats(l, Reference{Center: centres}, PopulationStatsConfig{})
	for _, tc := range []struct {
		name  string
		sum   []float64
		noise float64
	}{
		{"short", make([]float64, 3), 0},
		{"NaN", append(make([]float64, s.Len()-1), math.NaN()), 0},
		{"negative noise", make([]float64, s.Len()), -1},
	} {
		if _, err := s.Decode(tc.sum, tc.noise); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}
