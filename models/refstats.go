package models

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
)

// A layout with no public reference (mouse: synthetic movers are too crude to be the
// reference) learns one in a reference round before its statistics round (PopulationStats):
// every device describes, in one bounded vector, its means of the broad buckets (roots and the
// buckets that pool others) around the layout's public prior (Layout.ReferencePrior, 0 without
// one) and the spread of each root (SpreadStats). The decoded sum gives every bucket the centre
// of its nearest broad ancestor, so that a device's deviations in the statistics round are from
// the nearest broad mean, and its root's spread as scale, so that features of different units
// are bounded and noised alike. ReferenceStats is that encoding; the evaluation's simulated rounds and the
// coordinator's real ones both use it.

// Bounds of a decoded reference: centres within refMaxCentre of the prior, scales within
// [e^-spreadMaxLog, e^spreadMaxLog]. They are what the encoding allows (deviations from the
// prior clamped at refMaxCentre, log spreads at spreadMaxLog), so an honest decoding stays
// within them and a device can refuse a reference outside them (CheckReference).
const refMaxCentre = 20

// refNoiseFloor is how many standard deviations of its centre's noise a reference scale is at
// least. On the Balabit development protocol at epsilon 8 (clip 80), AUC 0.892 without scales,
// and with scales floored at 0.5, 1, 2 and 3 standard deviations 0.864, 0.897, 0.920 and 0.919.
const refNoiseFloor = 2

// refWeight weighs the entries of the centring part. Only the mean matters (the decoder reads
// no variance: decodeCentres), so the norm goes to the count and the deviation from the prior,
// which a close prior keeps to a few units, and the others get next to none.
//
// Before the prior, the value was a raw mean (up to 11 for log-jerks) at weight 0.2, the
// variances at weight 1 kept the pooled variance the decoder then required positive, and the
// centres were off by 0.9 units for the noise on the value alone and by 18% of the value for
// the noise on the count it is divided by, several reference scales for the largest features,
// at which most devices' deviations in the statistics round clamp on one side. Balabit
// development protocol at epsilon 8, seeds 1-3: AUC 0.928, 0.914, 0.936 before; 0.934, 0.931,
// 0.930 with the synthetic movers' prior, weight 1 and no variance gate; 0.936, 0.935, 0.928
// with the reference taken without noise.
var refWeight = [psPerBucket]float64{1, 1, 1e-3, 1e-3, 1e-3}

// ReferenceStats encodes a device's windows into a bounded contribution to a reference round
// and decodes the noisy sum of many into a Reference. It holds no mutable state.
type ReferenceStats struct {
	layout  *Layout
	broad   []bool    // buckets that are roots or pool others: the centres described
	prior   []float64 // per bucket, the centre deviations are taken from (0 for none)
	centres *PopulationStats
	spread  *SpreadStats
}

// NewReferenceStats returns the reference encoding for layout l.
func NewReferenceStats(l *Layout) (*ReferenceStats, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	nb := l.NumBuckets()
	r := &ReferenceStats{layout: l, broad: make([]bool, nb), prior: make([]float64, nb)}
	for b := range nb {
		if a := l.Parent[b]; a >= 0 {
			r.broad[a] = true
		} else {
			r.broad[b] = true
		}
	}
	centre := make([]float64, nb)
	n := 0
	for b := range centre {
		if l.ReferencePrior != nil && !math.IsNaN(l.ReferencePrior[b]) {
			r.prior[b] = l.ReferencePrior[b]
		}
		centre[b] = math.NaN()
		if r.broad[b] {
			centre[b] = r.prior[b]
			n++
		}
	}
	var err error
	// Room for every broad bucket at deviations up to about 2.5 (the clip's 7.2 per bucket);
	// a device whose deviations are larger describes its rarest buckets no more.
	r.centres, err = NewPopulationStats(l, Reference{Center: centre}, PopulationStatsConfig{
		Clip: math.Sqrt(float64(n) * 7.2), MaxDev: refMaxCentre, MaxVar: 1, Weight: refWeight,
	})
	if err != nil {
		return nil, err
	}
	if r.spread, err = NewSpreadStats(l); err != nil {
		return nil, err
	}
	return r, nil
}

// Layout is the layout the encoding describes.
func (r *ReferenceStats) Layout() *Layout { return r.layout }

// Len is the length of a contribution.
func (r *ReferenceStats) Len() int { return r.centres.Len() + r.spread.Len() }

// Clip is the norm every contribution stays within: that of its two parts together.
func (r *ReferenceStats) Clip() float64 { return math.Hypot(r.centres.Clip(), r.spread.Clip()) }

// Contribute returns the device's contribution over its windows.
func (r *ReferenceStats) Contribute(windows []Window) ([]float64, error) {
	v, err := r.centres.Contribute(windows)
	if err != nil {
		return nil, err
	}
	sp, err := r.spread.Contribute(windows)
	if err != nil {
		return nil, err
	}
	return append(v, sp...), nil
}

// CanModel reports whether the sum of n devices' contributions, each entry carrying Gaussian
// noise of standard deviation noiseStd, can give any bucket a centre.
func (r *ReferenceStats) CanModel(n int, noiseStd float64) bool {
	return r.centres.CanModel(n, noiseStd)
}

// Decode returns the reference from the sum of devices' contributions, of which every entry
// carries Gaussian noise of standard deviation noiseStd. A bucket whose broad ancestors are
// none of them modelled has no centre (NaN) and is not described by the statistics round.
func (r *ReferenceStats) Decode(sum []float64, noiseStd float64) (Reference, error) {
	if len(sum) != r.Len() {
		return Reference{}, fmt.Errorf("%w: reference statistics have %d entries, want %d", ErrBadData, len(sum), r.Len())
	}
	n1 := r.centres.Len()
	for i, v := range sum {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Reference{}, fmt.Errorf("%w: reference statistic %d is %v", ErrBadData, i, v)
		}
	}
	if !(noiseStd >= 0) || math.IsInf(noiseStd, 1) {
		return Reference{}, fmt.Errorf("%w: noise standard deviation %v", ErrBadData, noiseStd)
	}
	mean, freq := r.decodeCentres(sum[:n1], noiseStd)
	scale, err := r.spread.Decode(sum[n1:], noiseStd, 2)
	if err != nil {
		return Reference{}, err
	}
	l := r.layout
	ref := Reference{Center: make([]float64, l.NumBuckets()), Scale: scale}
	for b := range ref.Center {
		a := b
		for !r.broad[a] || math.IsNaN(mean[a]) {
			if a = l.Parent[a]; a < 0 {
				break
			}
		}
		ref.Center[b] = math.NaN()
		if a < 0 {
			continue
		}
		ref.Center[b] = mean[a]
		// A centre is off by about its noise; measured in a finer scale than that, every
		// device's deviation would clamp at MaxDev on the same side. The floor stays within
		// the encoding's bounds: a bucket so rare that its centre's noise is wider is described
		// coarsely rather than not at all.
		if noiseStd > 0 {
			floor := refNoiseFloor * noiseStd / (refWeight[psDev] * freq[a])
			ref.Scale[b] = min(max(ref.Scale[b], floor), math.Exp(spreadMaxLog))
		}
	}
	return ref, nil
}

// decodeCentres returns the broad buckets' centres (NaN: not modelled) and device weights from
// the sum of the centring parts, as PopulationStats.Decode gives the means, each shrunk towards
// its parent's as far as the noise could explain their difference; but without requiring a
// positive pooled variance, which the reference does not use: a feature whose variance is small
// beside the noise on it would otherwise lose its centre, and all its buckets their place in
// the statistics round.
func (r *ReferenceStats) decodeCentres(sum []float64, noiseStd float64) (mean, freq []float64) {
	s := r.centres
	nb := r.layout.NumBuckets()
	w := s.cfg.Weight
	minUsers := s.cfg.MinUsers + s.cfg.NoiseMargin*noiseStd/w[psUsers]
	mean, freq, se2 := make([]float64, nb), make([]float64, nb), make([]float64, nb)
	for b := range nb {
		users := sum[b*psPerBucket+psUsers] / w[psUsers]
		freq[b] = max(users, 0)
		mean[b] = math.NaN()
		if users < minUsers || math.IsNaN(s.center[b]) {
			continue
		}
		mean[b] = s.center[b] + clamp(sum[b*psPerBucket+psDev]/w[psDev]/users, refMaxCentre)
		se2[b] = sq(noiseStd / w[psDev] / users)
	}
	if noiseStd > 0 {
		s.shrinkMeans(&Population{Layout: r.layout, Mean: mean}, se2)
		// Towards a parent of another prior: back within what the encoding allows.
		for b, m := range mean {
			if !math.IsNaN(m) {
				mean[b] = s.center[b] + clamp(m-s.center[b], refMaxCentre)
			}
		}
	}
	return mean, freq
}

// CheckReference returns an error naming the first bucket of ref that no honest decoding
// could produce: a centre farther than the encoding allows from the prior, or a scale outside the
// spreads it describes. A population's bounds are in its reference's scales, so a device that
// checks a population against a reference the coordinator chose checks that reference first.
func (r *ReferenceStats) CheckReference(ref Reference) error {
	nb := r.layout.NumBuckets()
	if len(ref.Center) != nb || len(ref.Scale) != nb {
		return fmt.Errorf("%w: a reference of %d centres and %d scales for the %d buckets of %s", ErrBadLayout, len(ref.Center), len(ref.Scale), nb, r.layout.Name)
	}
	const tol = 1e-9
	lo, hi := math.Exp(-spreadMaxLog)*(1-tol), math.Exp(spreadMaxLog)*(1+tol)
	for b := range nb {
		c, s := ref.Center[b], ref.Scale[b]
		if (!math.IsNaN(c) && !r.nearPrior(b, c, tol)) || !(s >= lo && s <= hi) {
			return fmt.Errorf("%w: reference bucket %d has centre %.4g and scale %.4g, outside what the encoding allows (centre within %d of its broad bucket's prior, scale in [%.3g, %.3g])",
				ErrBadData, b, c, s, refMaxCentre, lo, hi)
		}
	}
	return nil
}

// nearPrior reports whether c is a centre bucket b can have: within refMaxCentre of the prior
// of a broad bucket among b and its ancestors, whose centre b takes (Decode).
func (r *ReferenceStats) nearPrior(b int, c, tol float64) bool {
	for a := b; a >= 0; a = r.layout.Parent[a] {
		if r.broad[a] && math.Abs(c-r.prior[a]) <= refMaxCentre*(1+tol) {
			return true
		}
	}
	return false
}

// Digest identifies the encoding: its version, the layout and the settings of both parts.
func (r *ReferenceStats) Digest() [32]byte {
	h := sha256.New()
	h.Write([]byte("vigil-reference-stats-v2\n"))
	c := r.centres.Digest()
	h.Write(c[:])
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(r.spread.Len()))
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], math.Float64bits(spreadMaxLog))
	h.Write(b[:])
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// LearntBounds checks a population decoded relative to a learnt reference, as a device does
// before installing one: the reference it carries (Population.Reference) must be within what
// Reference's encoding allows, and the population within the bounds of the statistics
// encoding with settings Stats over that reference (PopulationStats.CheckPopulation).
type LearntBounds struct {
	Reference *ReferenceStats
	Stats     PopulationStatsConfig
}

// CheckPopulation returns an error naming what in p no honest pair of rounds could produce.
func (lb LearntBounds) CheckPopulation(p *Population) error {
	if p.Reference == nil {
		return fmt.Errorf("%w: a population of %s without the reference it was decoded against", ErrBadData, lb.Reference.Layout().Name)
	}
	if err := lb.Reference.CheckReference(*p.Reference); err != nil {
		return err
	}
	s, err := NewPopulationStats(lb.Reference.Layout(), *p.Reference, lb.Stats)
	if err != nil {
		return err
	}
	return s.CheckPopulation(p)
}

// ReferenceParams returns ref as a model's parameters (KindReference): per bucket its centre
// (0 for a bucket not described), its scale, and 1 if it is described, else 0; all finite, so
// that it is stored and checked like any model's parameters.
func ReferenceParams(ref Reference) []float64 {
	out := make([]float64, 0, 3*len(ref.Center))
	for b, c := range ref.Center {
		described := 1.0
		if math.IsNaN(c) {
			c, described = 0, 0
		}
		out = append(out, c, ref.Scale[b], described)
	}
	return out
}

// ReferenceFromParams is the reference of layout l that ReferenceParams encoded as params.
func ReferenceFromParams(l *Layout, params []float64) (Reference, error) {
	nb := l.NumBuckets()
	if len(params) != 3*nb {
		return Reference{}, fmt.Errorf("%w: a reference of %s has %d parameters, not %d", ErrBadData, l.Name, 3*nb, len(params))
	}
	ref := Reference{Center: make([]float64, nb), Scale: make([]float64, nb)}
	for b := range nb {
		c, s, described := params[3*b], params[3*b+1], params[3*b+2]
		switch described {
		case 0:
			c = math.NaN()
		case 1:
		default:
			return Reference{}, fmt.Errorf("%w: reference bucket %d marked %v, want 0 or 1", ErrBadData, b, described)
		}
		ref.Center[b], ref.Scale[b] = c, s
	}
	return ref, nil
}
