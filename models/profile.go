package models

import (
	"fmt"
	"math"
)

// ProfileConfig sets how a personal profile is learnt. The zero value gives the defaults.
type ProfileConfig struct {
	// Relevance scales the weight of the population prior against the user's own events in a
	// bucket: 1 (default) is the Bayesian weight, within- over between-user variance.
	Relevance float64
	// OffsetPrior is the pseudo-count of events that pulls a user's overall shift from the
	// population towards none (default 5).
	OffsetPrior float64
	// VariancePrior is the pseudo-count of events that pulls a user's consistency towards the
	// population's (default 5).
	VariancePrior float64
	// Clamp caps the standardised distance of one event from either model (default 3), so that
	// one stray timing cannot decide a window.
	Clamp float64
}

func (c *ProfileConfig) validate() error {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Relevance, 1)
	def(&c.OffsetPrior, 5)
	def(&c.VariancePrior, 5)
	def(&c.Clamp, 3)
	for _, v := range []float64{c.Relevance, c.OffsetPrior, c.VariancePrior, c.Clamp} {
		if !(v > 0 && v < 1e6) {
			return fmt.Errorf("models: profile setting %v out of range (0, 1e6)", v)
		}
	}
	return nil
}

// Profile is a user's personal timing profile: for every bucket, the value the user is expected
// to show and how consistently, learnt from enrolment windows with the population model as
// prior. It scores a window by how much better the population explains the window's events than
// the user does (a log-likelihood ratio, as GMM-UBM does); without a population it scores by
// the user's own likelihood alone.
//
// Scoring allocates nothing; a Profile is not safe for concurrent use.
type Profile struct {
	layout *Layout
	pop    *Population
	cfg    ProfileConfig
	acc    accumulator
	// Per bucket: the user's expected value (NaN when there is none) and the scoring
	// coefficients derived from it.
	mean  []float64
	coef  []bucketCoef
	scale [maxKinds]float64 // per kind: the user's variance relative to the population's
	shift [maxOffsets]float64
	// withinOwn is, without a population, each kind's within-user variance from the user's own
	// events.
	withinOwn [maxKinds]float64
}

// bucketCoef is what scoring one event in a bucket needs, kept together for locality. A bucket
// that is not scored has kind -1 and zero coefficients, which give every finite value zero
// evidence.
//
// negMean and negPopMean are -mean and -popMean: v+negMean is v-mean exactly (IEEE 754 defines
// the difference so), and, the addition commuting, the compiler adds v to the loaded value
// instead of copying v to subtract from it. They also make the struct 64 bytes, a cache line
// in a slice that starts on one (as large allocations do): at 48 bytes, half of the buckets
// straddle two lines.
type bucketCoef struct {
	mean, invUser, popMean, invPop, logTerm float64
	kind                                    int // -1: not scored
	negMean, negPopMean                     float64
}

// FitProfile learns a profile from the user's windows. pop may be nil: the profile then knows
// only the user's own events (the "no federation" baseline).
func FitProfile(l *Layout, pop *Population, windows []Window, cfg ProfileConfig) (*Profile, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if pop != nil && pop.Layout.Name != l.Name {
		return nil, fmt.Errorf("%w: population of %s used with layout %s", ErrBadLayout, pop.Layout.Name, l.Name)
	}
	if len(windows) == 0 {
		return nil, fmt.Errorf("%w: no enrolment windows", ErrBadData)
	}
	nb := l.NumBuckets()
	p := &Profile{layout: l, pop: pop, cfg: cfg, acc: newAccumulator(nb), mean: make([]float64, nb), coef: make([]bucketCoef, nb)}
	for i, w := range windows {
		if err := l.checkWindow(w); err != nil {
			return nil, fmt.Errorf("window %d: %w", i, err)
		}
		p.acc.addWindow(l, w, 1)
	}
	p.fitShiftAndScale(windows)
	p.refresh()
	return p, nil
}

// root returns the bucket at the end of b's parent chain.
func (l *Layout) root(b int) int {
	for l.Parent[b] >= 0 {
		b = l.Parent[b]
	}
	return b
}

// fitShiftAndScale estimates how far the user sits from the population overall (per offset
// group) and how consistent the user is (per kind), both shrunk towards the population.
func (p *Profile) fitShiftAndScale(windows []Window) {
	l := p.layout
	var shiftSum, shiftN [maxOffsets]float64
	var varSum, varN, ownSS, ownDof [maxKinds]float64
	visit := func(b int, v float64) {
		k := l.BucketKind[b]
		n := p.acc.n[b]
		if p.pop == nil {
			if n >= 2 {
				d := v - p.acc.sum[b]/n
				ownSS[k] += d * d
				ownDof[k] += (n - 1) / n
			}
			return
		}
		if r := l.root(b); l.Offset[r] >= 0 && p.pop.usable(r) {
			shiftSum[l.Offset[r]] += v - p.pop.Mean[r]
			shiftN[l.Offset[r]]++
		}
		if n >= 2 && p.pop.usable(b) {
			d := v - p.acc.sum[b]/n
			varSum[k] += d * d / p.pop.Within[b] * n / (n - 1)
			varN[k]++
		}
	}
	for _, w := range windows {
		for _, e := range w.Events {
			visit(e.Bucket, e.Value)
		}
		for d, v := range w.Dense {
			if !math.IsNaN(v) {
				visit(l.DenseBase+d, v)
			}
		}
	}
	for g := range p.shift {
		p.shift[g] = shiftSum[g] / (shiftN[g] + p.cfg.OffsetPrior)
	}
	for k := range p.scale {
		p.scale[k] = (varSum[k] + p.cfg.VariancePrior) / (varN[k] + p.cfg.VariancePrior)
		p.withinOwn[k] = math.NaN()
		if ownDof[k] >= 2 {
			p.withinOwn[k] = ownSS[k] / ownDof[k]
		}
	}
}

// refresh recomputes the expected values and scoring coefficients from the accumulated events.
func (p *Profile) refresh() {
	for b := range p.mean {
		p.mean[b] = math.Inf(1) // not computed yet
	}
	for b := range p.mean {
		p.expected(b)
	}
	l := p.layout
	for b := range p.coef {
		c := bucketCoef{mean: p.mean[b], kind: l.BucketKind[b]}
		if c.kind < 0 || l.Kinds[c.kind].Weight == 0 || math.IsNaN(c.mean) {
			p.coef[b] = bucketCoef{kind: -1}
			continue
		}
		if p.pop == nil {
			vu := p.withinOwn[c.kind]
			if math.IsNaN(vu) || vu <= 0 {
				c = bucketCoef{kind: -1}
			} else {
				c.invUser, c.logTerm = 1/math.Sqrt(vu), -0.5*math.Log(vu)
			}
			p.coef[b] = c
			continue
		}
		vu := p.pop.Within[b] * p.scale[c.kind]
		vp := vu + p.pop.Between[b]
		c.invUser, c.popMean, c.invPop = 1/math.Sqrt(vu), p.pop.Mean[b], 1/math.Sqrt(vp)
		c.logTerm = 0.5 * math.Log(vp/vu)
		p.coef[b] = c
	}
	for b := range p.coef {
		c := &p.coef[b]
		c.negMean, c.negPopMean = -c.mean, -c.popMean
	}
}

// expected returns the user's expected value in bucket b: the user's own mean, pulled towards
// a prior built from the broader bucket (or, failing that, from the population and the user's
// overall shift) as much as the user's evidence is thin. NaN means no expectation.
func (p *Profile) expected(b int) float64 {
	if !math.IsInf(p.mean[b], 1) {
		return p.mean[b]
	}
	l := p.layout
	n := p.acc.n[b]
	own := math.NaN()
	if n > 0 {
		own = p.acc.sum[b] / n
	}
	parent := l.Parent[b]
	var m float64
	if p.pop == nil {
		prior := math.NaN()
		if parent >= 0 {
			prior = p.expected(parent)
		}
		switch {
		case n > 0 && !math.IsNaN(prior):
			m = (n*own + p.cfg.Relevance*prior) / (n + p.cfg.Relevance)
		case n > 0:
			m = own
		default:
			m = prior
		}
		p.mean[b] = m
		return m
	}
	if !p.pop.usable(b) {
		p.mean[b] = math.NaN()
		return p.mean[b]
	}
	var prior float64
	if parent >= 0 && p.pop.usable(parent) && !math.IsNaN(p.expected(parent)) {
		prior = p.mean[parent] + p.pop.Mean[b] - p.pop.Mean[parent]
	} else {
		prior = p.pop.Mean[b]
		if g := l.Offset[l.root(b)]; g >= 0 {
			prior += p.shift[g]
		}
	}
	if n == 0 {
		m = prior
	} else {
		r := p.cfg.Relevance * p.pop.Within[b] / p.pop.Between[b]
		m = (n*own + r*prior) / (n + r)
	}
	p.mean[b] = m
	return m
}
