package models

import (
	"fmt"
	"math"
)

// Every device clamps its deviation from a bucket's centre to MaxDev and its within-bucket
// variance to MaxVar, in the reference's scale (Contribute). The population quantities the
// decoder estimates from their sum therefore lie within bounds: a mean within MaxDev scales of
// the centre, a within-user variance of at most MaxVar squared scales, a between-user variance of
// at most MaxDev squared scales. Decode projects the estimates the noise pushed outside back onto
// those bounds, which only brings them closer to what they estimate; and so a device can refuse a
// population outside them (CheckPopulation): no honest round produces one, and a coordinator that
// publishes models of its own choosing (its release key is online) cannot, for instance, inflate
// the variances until impostors pass for their victims.

// project moves bucket b's estimates onto the bounds the encoding guarantees.
func (s *PopulationStats) project(p *Population, b int) {
	c, sc := s.center[b], s.scale[b]
	if math.IsNaN(p.Mean[b]) || math.IsNaN(c) {
		return
	}
	p.Mean[b] = c + clamp(p.Mean[b]-c, s.cfg.MaxDev*sc)
	p.Within[b] = min(p.Within[b], s.cfg.MaxVar*sc*sc)
	p.Between[b] = min(max(p.Between[b], 0.01*p.Within[b]), s.cfg.MaxDev*s.cfg.MaxDev*sc*sc)
}

// CheckPopulation returns an error naming the first bucket of p that no honest decoding of
// contributions in this encoding could produce: a modelled bucket outside the bounds of its
// centre and scale, or, for a bucket modelled by backoff (Backoff) or without a centre of its
// own, one that is not a copy of an ancestor's model.
func (s *PopulationStats) CheckPopulation(p *Population) error {
	l := s.layout
	if p.Layout == nil || p.Layout.Name != l.Name || len(p.Mean) != l.NumBuckets() || len(p.Within) != len(p.Mean) || len(p.Between) != len(p.Mean) {
		return fmt.Errorf("%w: a population of another layout than %s", ErrBadLayout, l.Name)
	}
	const tol = 1e-9 // the encoded float64s round-trip exactly; this is for the arithmetic
	for b := range p.Mean {
		if math.IsNaN(p.Mean[b]) {
			continue
		}
		if !math.IsNaN(s.center[b]) && s.inBounds(p, b, tol) {
			continue
		}
		if !s.copiesAncestor(p, b) {
			return fmt.Errorf("%w: population bucket %d (mean %.4g, within %.4g, between %.4g) is outside what the encoding allows around centre %.4g, scale %.4g",
				ErrBadData, b, p.Mean[b], p.Within[b], p.Between[b], s.center[b], s.scale[b])
		}
	}
	return nil
}

func (s *PopulationStats) inBounds(p *Population, b int, tol float64) bool {
	c, sc := s.center[b], s.scale[b]
	slack := 1 + tol
	return math.Abs(p.Mean[b]-c) <= s.cfg.MaxDev*sc*slack+tol &&
		p.Within[b] > 0 && p.Within[b] <= s.cfg.MaxVar*sc*sc*slack &&
		p.Between[b] > 0 && p.Between[b] <= s.cfg.MaxDev*s.cfg.MaxDev*sc*sc*slack
}

// copiesAncestor reports whether bucket b's model is exactly that of its nearest modelled
// ancestor, as Decode's backoff gives a bucket too rare to be modelled.
func (s *PopulationStats) copiesAncestor(p *Population, b int) bool {
	if !s.cfg.Backoff {
		return false
	}
	for a := s.layout.Parent[b]; a >= 0; a = s.layout.Parent[a] {
		if !math.IsNaN(p.Mean[a]) {
			return p.Mean[a] == p.Mean[b] && p.Within[a] == p.Within[b] && p.Between[a] == p.Between[b]
		}
	}
	return false
}
