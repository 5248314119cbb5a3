package models

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// boundsFixture is an encoding of testLayout around a public reference from made-up users, and
// the exact sum of 60 devices' contributions in it.
func boundsFixture(t *testing.T, rng *rand.Rand, backoff bool) (*PopulationStats, Reference, []float64) {
	t.Helper()
	var public []Window
	for u := 0; u < 20; u++ {
		public = append(public, testWindows(rng, 2, 0.3*rng.NormFloat64())...)
	}
	ref, err := ReferenceByKind(testLayout(), public)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewPopulationStats(testLayout(), ref, PopulationStatsConfig{Clip: 20, Backoff: backoff})
	if err != nil {
		t.Fatal(err)
	}
	sum := make([]float64, s.Len())
	for u := 0; u < 60; u++ {
		v, err := s.Contribute(testWindows(rng, 5, 0.3*rng.NormFloat64()))
		if err != nil {
			t.Fatal(err)
		}
		for i := range v {
			sum[i] += v[i]
		}
	}
	return s, ref, sum
}

// TestDecodeStaysWithinBounds checks that whatever the noise, a decoded population passes
// CheckPopulation (the bounds hold for every honest round), and that noisy estimates are
// projected onto them rather than left outside.
func TestDecodeStaysWithinBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	for _, backoff := range []bool{false, true} {
		s, _, sum := boundsFixture(t, rng, backoff)
		for _, noise := range []float64{0, 1, 5, 20} {
			noisy := make([]float64, len(sum))
			for i := range sum {
				noisy[i] = sum[i] + noise*rng.NormFloat64()
			}
			pop, err := s.Decode(noisy, noise)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.CheckPopulation(pop); err != nil {
				t.Errorf("backoff %v, noise %v: the honest decode fails its own check: %v", backoff, noise, err)
			}
		}
	}
}

// TestAttackInflatedPopulation performs the attack a coordinator holding the release key could:
// it publishes a population whose variances (or means) no honest round could produce, under
// which an impostor's typing looks like the victim's. The device's check refuses each.
func TestAttackInflatedPopulation(t *testing.T) {
	s, ref, sum := boundsFixture(t, rand.New(rand.NewPCG(7, 7)), true)
	honest, err := s.Decode(sum, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := -1
	for i := range honest.Mean {
		if !math.IsNaN(honest.Mean[i]) && !math.IsNaN(ref.Center[i]) {
			b = i
			break
		}
	}
	if b < 0 {
		t.Fatal("the honest population models no bucket")
	}
	for _, tc := range []struct {
		name   string
		poison func(p *Population)
	}{
		{"within-user variance x100", func(p *Population) { p.Within[b] *= 100 }},
		{"between-user variance x100", func(p *Population) { p.Between[b] = 100 * (p.Between[b] + 1) }},
		{"mean moved 10 scales", func(p *Population) { p.Mean[b] += 10 * ref.scaleOf(b) }},
		{"a bucket without a centre of its own, not a copy", func(p *Population) {
			for i := range p.Mean {
				if math.IsNaN(ref.Center[i]) {
					p.Mean[i], p.Within[i], p.Between[i] = 0, 1, 1
					return
				}
			}
			p.Within[b] *= 100 // the layout has none: poison as above
		}},
	} {
		p := clonePopulation(honest)
		tc.poison(p)
		if err := s.CheckPopulation(p); !errors.Is(err, ErrBadData) {
			t.Errorf("%s: %v, want ErrBadData", tc.name, err)
		}
	}
	if err := s.CheckPopulation(honest); err != nil {
		t.Fatalf("the honest population: %v", err)
	}
}

func (r Reference) scaleOf(b int) float64 {
	if r.Scale == nil {
		return 1
	}
	return r.Scale[b]
}

func clonePopulation(p *Population) *Population {
	q := *p
	q.Mean = append([]float64(nil), p.Mean...)
	q.Within = append([]float64(nil), p.Within...)
	q.Between = append([]float64(nil), p.Between...)
	q.Freq = append([]float64(nil), p.Freq...)
	return &q
}
