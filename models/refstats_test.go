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

// TestReferenceStatsPrior: devices describe their means around the layout's prior, so a close
// prior decodes the devices' weighted mean exactly and costs them less norm than zero, where
// devices with large values run out of norm and leave the buckets they describe last; a
// device's check bounds centres around the prior rather than around zero.
func TestReferenceStatsPrior(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	devices := make([][]Window, 200)
	for i := range devices {
		// Offsets within what the clip leaves room for around the prior below.
		devices[i] = testWindows(rng, 5, 0.3*rng.NormFloat64())
	}
	// The devices' means of the broad buckets (root 0 pools buckets 1 and 2, pool 3 bucket 4;
	// dense entries 5 and 6), each weighted as Contribute weighs it.
	l := testLayout()
	var num, den [7]float64
	for _, ws := range devices {
		acc := newAccumulator(l.NumBuckets())
		for _, w := range ws {
			acc.addWindow(l, w, 1)
		}
		for _, b := range []int{0, 3, 5, 6} {
			omega := acc.n[b] / (acc.n[b] + 2)
			num[b] += omega * acc.sum[b] / acc.n[b]
			den[b] += omega
		}
	}
	decode := func(prior []float64) (*ReferenceStats, Reference, float64) {
		l := testLayout()
		l.ReferencePrior = prior
		r, err := NewReferenceStats(l)
		if err != nil {
			t.Fatal(err)
		}
		sum := make([]float64, r.Len())
		var norm float64
		for _, ws := range devices {
			v, err := r.Contribute(ws)
			if err != nil {
				t.Fatal(err)
			}
			var sq float64
			for i := range v {
				sum[i] += v[i]
				sq += v[i] * v[i]
			}
			norm += math.Sqrt(sq) / float64(len(devices))
		}
		ref, err := r.Decode(sum, 0)
		if err != nil {
			t.Fatal(err)
		}
		return r, ref, norm
	}
	_, _, zeroNorm := decode(nil)
	r, ref, norm := decode([]float64{2, math.NaN(), math.NaN(), 2, math.NaN(), 0, 0})
	for _, b := range []int{0, 3, 5, 6} {
		if want := num[b] / den[b]; math.Abs(ref.Center[b]-want) > 1e-9 {
			t.Errorf("bucket %d: centre %v, want the devices' mean %v", b, ref.Center[b], want)
		}
	}
	if !(norm < zeroNorm) {
		t.Errorf("mean contribution norm %.3f around the prior, %.3f around zero", norm, zeroNorm)
	}
	if err := r.CheckReference(ref); err != nil {
		t.Errorf("an honest decoding is refused: %v", err)
	}
	// A centre farther than the encoding's bound from the prior is refused even where it is
	// within the bound of zero, and one within it accepted even where it is not.
	r, ref, _ = decode([]float64{-15, 0, 0, 18, 0, 10, -10})
	if err := r.CheckReference(ref); err != nil {
		t.Errorf("an honest decoding around a far prior is refused: %v", err)
	}
	for _, tc := range []struct {
		centre float64
		ok     bool
	}{{-15 - 0.99*refMaxCentre, true}, {-15 + 1.01*refMaxCentre, false}} {
		poisoned := Reference{Center: append([]float64(nil), ref.Center...), Scale: ref.Scale}
		poisoned.Center[0] = tc.centre
		if err := r.CheckReference(poisoned); (err == nil) != tc.ok {
			t.Errorf("root centre %v around prior -15: %v, want accepted %v", tc.centre, err, tc.ok)
		}
	}
}

// TestReferenceStatsNarrowFeatureKeepsCentre: a feature whose spread is small beside the noise
// still gets its centre; the decoder does not require a pooled variance the noise can turn
// negative (the reference uses none), which left whole mouse features out of the statistics
// round.
func TestReferenceStatsNarrowFeatureKeepsCentre(t *testing.T) {
	r, err := NewReferenceStats(testLayout())
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	sum := make([]float64, r.Len())
	for range 500 {
		ws := testWindows(rng, 5, 0.1*rng.NormFloat64())
		for _, w := range ws {
			for i := range w.Dense {
				w.Dense[i] = 0.3 + 0.01*rng.NormFloat64() // a narrow feature
			}
		}
		v, err := r.Contribute(ws)
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			sum[i] += v[i]
		}
	}
	const noise = 20
	for draw := range 20 {
		noisy := append([]float64(nil), sum...)
		for i := range noisy {
			noisy[i] += noise * rng.NormFloat64()
		}
		ref, err := r.Decode(noisy, noise)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range []int{5, 6} {
			// The centre's noise is about noise/500 = 0.04.
			if c := ref.Center[b]; !(math.Abs(c-0.3) < 0.25) {
				t.Errorf("draw %d: dense bucket %d has centre %v, want about 0.3", draw, b, c)
			}
		}
	}
}
