package models

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// refFixture returns the reference encoding of the test layout and the exact sum of 200
// devices' contributions.
func refFixture(t *testing.T) (*ReferenceStats, []float64) {
	t.Helper()
	r, err := NewReferenceStats(testLayout())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	sum := make([]float64, r.Len())
	for u := range 200 {
		v, err := r.Contribute(testWindows(rng, 5, rng.NormFloat64()))
		if err != nil {
			t.Fatal(err)
		}
		var sq float64
		for i := range v {
			sq += v[i] * v[i]
			sum[i] += v[i]
		}
		if math.Sqrt(sq) > r.Clip() {
			t.Fatalf("device %d: norm %v above the clip %v", u, math.Sqrt(sq), r.Clip())
		}
	}
	return r, sum
}

// TestReferenceStatsDecodesWithinBounds: every decoding, exact or under any noise, is a
// reference the statistics round accepts and a device's check passes; the exact one gives
// every described bucket a centre and a spread of its own root.
func TestReferenceStatsDecodesWithinBounds(t *testing.T) {
	r, sum := refFixture(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, noise := range []float64{0, 0.1, 1, 10, 100, 1e4} {
		noisy := append([]float64(nil), sum...)
		for i := range noisy {
			noisy[i] += noise * rng.NormFloat64()
		}
		ref, err := r.Decode(noisy, noise)
		if err != nil {
			t.Fatalf("noise %v: %v", noise, err)
		}
		if err := r.CheckReference(ref); err != nil {
			t.Errorf("noise %v: an honest decoding is refused: %v", noise, err)
		}
		if _, err := NewPopulationStats(r.Layout(), ref, PopulationStatsConfig{}); err != nil {
			t.Errorf("noise %v: the statistics round cannot use the reference: %v", noise, err)
		}
		if noise == 0 {
			for b, c := range ref.Center {
				if math.IsNaN(c) {
					t.Errorf("exact sum: bucket %d has no centre", b)
				}
			}
		}
	}
}

// TestAttackPoisonedReference: a coordinator choosing the reference of a mouse population (to
// widen the bounds the population is checked against) is refused by the device's check.
func TestAttackPoisonedReference(t *testing.T) {
	r, sum := refFixture(t)
	honest, err := r.Decode(sum, 0)
	if err != nil {
		t.Fatal(err)
	}
	clone := func() Reference {
		return Reference{Center: append([]float64(nil), honest.Center...), Scale: append([]float64(nil), honest.Scale...)}
	}
	for _, tc := range []struct {
		name   string
		poison func(*Reference)
	}{
		{"scales a hundredfold", func(ref *Reference) {
			for b := range ref.Scale {
				ref.Scale[b] *= 100
			}
		}},
		{"one centre far away", func(ref *Reference) { ref.Center[2] = 1e3 }},
		{"a zero scale", func(ref *Reference) { ref.Scale[1] = 0 }},
		{"a NaN scale", func(ref *Reference) { ref.Scale[0] = math.NaN() }},
		{"a bucket missing", func(ref *Reference) { ref.Scale = ref.Scale[1:] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := clone()
			tc.poison(&ref)
			err := r.CheckReference(ref)
			if !errors.Is(err, ErrBadData) && !errors.Is(err, ErrBadLayout) {
				t.Fatalf("poisoned reference: %v, want it refused", err)
			}
			t.Log(err)
		})
	}
}

// TestPopulationArtifactCarriesReference: a population with its reference round-trips, and a
// truncated reference is refused.
func TestPopulationArtifactCarriesReference(t *testing.T) {
	r, sum := refFixture(t)
	ref, err := r.Decode(sum, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewPopulationStats(r.Layout(), ref, PopulationStatsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	psum := make([]float64, s.Len())
	for range 100 {
		v, err := s.Contribute(testWindows(rng, 5, rng.NormFloat64()))
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			psum[i] += v[i]
		}
	}
	pop, err := s.Decode(psum, 0)
	if err != nil {
		t.Fatal(err)
	}
	pop.Reference = &ref
	data := EncodePopulation(pop)
	got, err := DecodePopulation(r.Layout(), data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reference == nil {
		t.Fatal("the reference was lost")
	}
	for b := range ref.Center {
		same := func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }
		if !same(got.Reference.Center[b], ref.Center[b]) || got.Reference.Scale[b] != ref.Scale[b] {
			t.Fatalf("bucket %d: reference %v/%v, want %v/%v", b, got.Reference.Center[b], got.Reference.Scale[b], ref.Center[b], ref.Scale[b])
		}
	}
	if _, err := DecodePopulation(r.Layout(), data[:len(data)-8]); !errors.Is(err, ErrBadData) {
		t.Fatalf("truncated reference: %v", err)
	}
}
