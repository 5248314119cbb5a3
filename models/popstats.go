package models

import (
	"fmt"
	"math"
	"slices"
)

// The population model as NewPopulation builds it needs an exact sum of every device's raw
// statistics: six entries for each of thousands of buckets, with norms of hundreds per device
// (event counts, squared means of log-times). Clipped to a common norm and noised for
// differential privacy, that sum loses most buckets. PopulationStats is the form of the same
// knowledge that survives the noise:
//
//   - values are centred on a public reference per bucket (Center), so that a device sends its
//     deviation from it, which is small, rather than the value itself;
//   - every entry is bounded, and a device describes each bucket by its own mean, weighted by
//     how much its events say (n/(n+Relevance)), not by event counts, so that no device
//     outweighs others and a bucket seen once costs little of the norm;
//   - a device spends a fixed norm budget (Clip) on the buckets it has most evidence on, most
//     first, and stops before the budget runs out: the vector never needs clipping, so the
//     buckets it does describe are described exactly;
//   - the decoder pools the variances of event buckets per kind and shrinks each bucket's mean
//     towards its parent's as far as the noise could explain their difference, so that rare
//     buckets borrow strength instead of turning into noise.

// Per-bucket entries of a PopulationStats contribution.
const (
	psUsers  = iota // 1: the device describes this bucket
	psDev           // the device's mean minus the bucket's centre, clamped
	psSquare        // the square of that, less its sampling noise (variance over events)
	psVar           // the device's within-bucket variance, when it has two events or more
	psHasVar        // 1 when psVar is set
	psPerBucket
)

// PopulationStatsConfig sets the encoding. The zero value gives the defaults.
type PopulationStatsConfig struct {
	// Clip is the L2 norm a device's contribution stays within (default 30): the clip norm C of
	// the round that sums the contributions.
	Clip float64
	// MaxDev bounds a device's deviation from a bucket's centre (default 3) and MaxVar its
	// within-bucket variance (default 1), both in the reference's scale.
	MaxDev, MaxVar float64
	// Weight scales each entry before summing (default 1, 2, 1, 1, 0.5 for users, deviation,
	// square, variance, has-variance): a larger weight buys an entry more signal against the
	// same noise at the price of norm.
	Weight [psPerBucket]float64
	// PoolByRoot pools event buckets' variances per kind under each root bucket rather than per
	// kind: for layouts whose kinds mix features of different units under different roots
	// (mouse: one root per feature).
	PoolByRoot bool
	// Backoff gives a bucket too rare to be modelled the model of its nearest modelled
	// ancestor.
	Backoff bool
	// Relevance sets how much a device's bucket weighs: n/(n+Relevance) for n events
	// (default 2, about the ratio of within- to between-user variance of typing timings).
	Relevance float64
	// MinUsers is the weight of devices (see Relevance) a bucket needs, on top of NoiseMargin
	// standard deviations of the noise on it, to be modelled (defaults 1 and 2).
	MinUsers, NoiseMargin float64
}

func (c *PopulationStatsConfig) validate() error {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Clip, 30)
	def(&c.MaxDev, 3)
	def(&c.MaxVar, 1)
	def(&c.MinUsers, 1)
	def(&c.NoiseMargin, 2)
	def(&c.Relevance, 2)
	for i, d := range [psPerBucket]float64{1, 2, 1, 1, 0.5} {
		def(&c.Weight[i], d)
	}
	for _, v := range append([]float64{c.Clip, c.MaxDev, c.MaxVar, c.MinUsers, c.NoiseMargin, c.Relevance}, c.Weight[:]...) {
		if !(v > 0 && v < 1e6) {
			return fmt.Errorf("models: population statistics setting %v out of range (0, 1e6)", v)
		}
	}
	return nil
}

// PopulationStats encodes a device's windows into a bounded contribution and decodes the noisy
// mean of many contributions into a Population. It holds no mutable state.
type PopulationStats struct {
	layout        *Layout
	center, scale []float64
	cfg           PopulationStatsConfig
}

// Reference is the public reference a PopulationStats encoding is relative to: per bucket, the
// centre a device's mean is measured from (NaN: the bucket is not described) and the scale it
// is measured in (nil: 1 for every bucket). Standardising puts buckets of very different
// units (log-times, rates of a few percent) on one footing against one noise.
type Reference struct {
	Center, Scale []float64
}

// NewPopulationStats returns the encoding for layout l around the public reference ref, for
// example ReferenceByKind over windows that describe nobody, or the previous release's
// population (ReferenceFrom).
func NewPopulationStats(l *Layout, ref Reference, cfg PopulationStatsConfig) (*PopulationStats, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Backoff = cfg.Backoff || l.StatsBackoff
	cfg.PoolByRoot = cfg.PoolByRoot || l.StatsPoolByRoot
	nb := l.NumBuckets()
	if len(ref.Center) != nb || (ref.Scale != nil && len(ref.Scale) != nb) {
		return nil, fmt.Errorf("%w: %d centres and %d scales for %d buckets of %s", ErrBadData, len(ref.Center), len(ref.Scale), nb, l.Name)
	}
	scale := ref.Scale
	if scale == nil {
		scale = make([]float64, nb)
		for b := range scale {
			scale[b] = 1
		}
	}
	for b := range ref.Center {
		if math.IsInf(ref.Center[b], 0) || !(scale[b] > 0) || math.IsInf(scale[b], 1) {
			return nil, fmt.Errorf("%w: reference of bucket %d is centre %v, scale %v", ErrBadData, b, ref.Center[b], scale[b])
		}
	}
	return &PopulationStats{layout: l, center: slices.Clone(ref.Center), scale: slices.Clone(scale), cfg: cfg}, nil
}

// Len is the length of a contribution.
func (s *PopulationStats) Len() int { return psPerBucket * s.layout.NumBuckets() }

// Clip is the norm every contribution stays within.
func (s *PopulationStats) Clip() float64 { return s.cfg.Clip }

// Contribute returns the device's contribution over its windows: its buckets with the most
// events first, each described by bounded entries, until the next bucket would take the norm
// past Clip.
func (s *PopulationStats) Contribute(windows []Window) ([]float64, error) {
	l := s.layout
	acc := newAccumulator(l.NumBuckets())
	for i, w := range windows {
		if err := l.checkWindow(w); err != nil {
			return nil, fmt.Errorf("window %d: %w", i, err)
		}
		acc.addWindow(l, w, 1)
	}
	var order []int
	for b, n := range acc.n {
		if n > 0 && !math.IsNaN(s.center[b]) {
			order = append(order, b)
		}
	}
	// Most events first; ties by bucket so that the encoding is deterministic.
	slices.SortFunc(order, func(a, b int) int {
		if acc.n[a] != acc.n[b] {
			if acc.n[a] > acc.n[b] {
				return -1
			}
			return 1
		}
		return a - b
	})
	out := make([]float64, s.Len())
	budget := s.cfg.Clip * s.cfg.Clip * (1 - 1e-9) // dp.ClipL2 keeps a safety margin below C
	var used float64
	w := s.cfg.Weight
	for _, b := range order {
		n := acc.n[b]
		m := acc.sum[b] / n
		// A device weighs each bucket by how much its own mean says about the population's:
		// one event in a bucket says little (its within-user noise outweighs the spread
		// between users), ten say much. Weighing costs a rare bucket little norm.
		omega := n / (n + s.cfg.Relevance)
		var e [psPerBucket]float64
		e[psUsers] = omega
		sc := s.scale[b]
		d := clamp((m-s.center[b])/sc, s.cfg.MaxDev)
		e[psDev] = omega * d
		v := 0.0
		if n >= 2 {
			v = min(max(acc.sumSq[b]-n*m*m, 0)/(n-1)/(sc*sc), s.cfg.MaxVar)
			e[psVar], e[psHasVar] = omega*v, omega
		}
		// E[d^2] = (true deviation)^2 + v/n: subtracting v/n leaves the between-user part.
		e[psSquare] = omega * clamp(d*d-v/n, s.cfg.MaxDev*s.cfg.MaxDev)
		var sq float64
		for i := range e {
			e[i] *= w[i]
			sq += e[i] * e[i]
		}
		if used+sq > budget {
			break
		}
		used += sq
		copy(out[b*psPerBucket:], e[:])
	}
	return out, nil
}

func clamp(x, lim float64) float64 { return min(max(x, -lim), lim) }

// Decode derives the population model from the sum of devices' contributions, of which every
// entry carries Gaussian noise of standard deviation noiseStd (0 for an exact sum).
//
// A bucket is modelled when its noisy device weight reaches MinUsers plus NoiseMargin standard
// deviations of its noise. Its mean is shrunk towards its parent's by how much of its
// deviation from the parent the noise could explain (empirical Bayes, with the spread of
// buckets around their parents estimated per kind). Event buckets take the within- and
// between-user variances pooled over their kind: measured on the Aalto data with exact sums,
// per-kind variances lose nothing against per-bucket ones (mean EER 3.84% against 3.94%, 100
// users), and pooling turns thousands of noisy estimates into a few precise ones. Dense buckets,
// which every device describes, keep their own.
func (s *PopulationStats) Decode(sum []float64, noiseStd float64) (*Population, error) {
	l := s.layout
	if len(sum) != s.Len() {
		return nil, fmt.Errorf("%w: population statistics have %d entries, want %d", ErrBadData, len(sum), s.Len())
	}
	if !(noiseStd >= 0) || math.IsInf(noiseStd, 1) {
		return nil, fmt.Errorf("%w: noise standard deviation %v", ErrBadData, noiseStd)
	}
	for i, v := range sum {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: population statistic %d is %v", ErrBadData, i, v)
		}
	}
	nb := l.NumBuckets()
	w := s.cfg.Weight
	p := &Population{Layout: l, Mean: make([]float64, nb), Within: make([]float64, nb), Between: make([]float64, nb), Freq: make([]float64, nb), FromStats: true}
	minUsers := s.cfg.MinUsers + s.cfg.NoiseMargin*noiseStd/w[psUsers]
	dense := func(b int) bool { return b >= l.DenseBase && b < l.DenseBase+l.NumDense }
	entry := func(b, i int) float64 { return sum[b*psPerBucket+i] / w[i] }
	// Noise of an entry, in the entry's units.
	noise := func(i int) float64 { return noiseStd / w[i] }

	// Per bucket: devices, mean deviation and its noise variance, in the reference's scale;
	// se2 is the noise variance of the mean in the bucket's own units.
	users, dev, std2, se2 := make([]float64, nb), make([]float64, nb), make([]float64, nb), make([]float64, nb)
	for b := 0; b < nb; b++ {
		users[b] = entry(b, psUsers)
		p.Freq[b] = max(users[b], 0)
		p.Users = max(p.Users, users[b])
		p.Mean[b] = math.NaN()
		if users[b] < minUsers || math.IsNaN(s.center[b]) {
			continue
		}
		dev[b] = entry(b, psDev) / users[b]
		std2[b] = sq(noise(psDev) / users[b])
		se2[b] = std2[b] * sq(s.scale[b])
		p.Mean[b] = s.center[b] + s.scale[b]*dev[b]
	}

	// Variances: per bucket for dense buckets, pooled per group for the others.
	groups, group := s.poolGroups()
	var (
		gUsers  = make([]float64, groups)
		gHasVar = make([]float64, groups)
		gVar    = make([]float64, groups)
		gSquare = make([]float64, groups)
		gMeanSq = make([]float64, groups)
	)
	for b := 0; b < nb; b++ {
		if math.IsNaN(p.Mean[b]) {
			continue
		}
		if dense(b) {
			hasVar := entry(b, psHasVar)
			within := math.NaN()
			if hasVar >= minUsers {
				within = entry(b, psVar) / hasVar
			}
			between := entry(b, psSquare)/users[b] - dev[b]*dev[b] + std2[b]
			if !(within > 0) {
				p.Mean[b] = math.NaN()
				continue
			}
			s2 := sq(s.scale[b])
			p.Within[b], p.Between[b] = s2*within, s2*max(between, 0.01*within)
			continue
		}
		g := group(b)
		gUsers[g] += users[b]
		gHasVar[g] += entry(b, psHasVar)
		gVar[g] += entry(b, psVar)
		gSquare[g] += entry(b, psSquare)
		// E[users * dev^2] carries users * se2 of noise.
		gMeanSq[g] += users[b] * (dev[b]*dev[b] - std2[b])
	}
	within, between := make([]float64, groups), make([]float64, groups)
	for g := range within {
		if gHasVar[g] > 0 && gUsers[g] > 0 {
			within[g] = gVar[g] / gHasVar[g]
			between[g] = max((gSquare[g]-gMeanSq[g])/gUsers[g], 0.01*within[g])
		}
	}
	for b := 0; b < nb; b++ {
		if math.IsNaN(p.Mean[b]) || dense(b) {
			continue
		}
		g := group(b)
		if !(within[g] > 0) {
			p.Mean[b] = math.NaN()
			continue
		}
		s2 := sq(s.scale[b])
		p.Within[b], p.Between[b] = s2*within[g], s2*between[g]
	}

	// Means: shrink each bucket towards its parent, parents first.
	if noiseStd > 0 {
		s.shrinkMeans(p, se2)
	}

	for b := 0; b < nb; b++ {
		s.project(p, b)
	}

	// A bucket too rare to be modelled takes the model of the nearest ancestor that is, so that
	// its events are still scored, as broadly as the population knows them.
	if s.cfg.Backoff {
		for b := 0; b < nb; b++ {
			if !math.IsNaN(p.Mean[b]) || l.BucketKind[b] < 0 {
				continue
			}
			for a := l.Parent[b]; a >= 0; a = l.Parent[a] {
				if !math.IsNaN(p.Mean[a]) {
					p.Mean[b], p.Within[b], p.Between[b] = p.Mean[a], p.Within[a], p.Between[a]
					break
				}
			}
		}
	}
	return p, nil
}

// shrinkMeans moves each modelled bucket's mean towards its modelled parent's by the share of
// their difference that the noise (se2, per bucket) could explain; the spread of children
// around their parents (tau^2) is estimated per kind net of the noise.
func (s *PopulationStats) shrinkMeans(p *Population, se2 []float64) {
	l := s.layout
	nb := l.NumBuckets()
	groups, group := s.poolGroups()
	var num, den = make([]float64, groups), make([]float64, groups)
	for b := 0; b < nb; b++ {
		a := l.Parent[b]
		if a < 0 || math.IsNaN(p.Mean[b]) || math.IsNaN(p.Mean[a]) {
			continue
		}
		// Weighted by precision, so that well measured buckets set the spread.
		wt := 1 / (se2[b] + se2[a] + 1e-12)
		g := group(b)
		num[g] += wt * (sq(p.Mean[b]-p.Mean[a]) - se2[b] - se2[a])
		den[g] += wt
	}
	tau2 := make([]float64, groups)
	for g := range tau2 {
		if den[g] > 0 {
			tau2[g] = max(num[g]/den[g], 1e-6)
		}
	}
	// Depth order: a parent is final before its children move towards it.
	depth := func(b int) int {
		d := 0
		for a := l.Parent[b]; a >= 0; a = l.Parent[a] {
			d++
		}
		return d
	}
	order := make([]int, 0, nb)
	for b := 0; b < nb; b++ {
		if l.Parent[b] >= 0 && !math.IsNaN(p.Mean[b]) {
			order = append(order, b)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int { return depth(a) - depth(b) })
	for _, b := range order {
		a := l.Parent[b]
		if math.IsNaN(p.Mean[a]) {
			continue
		}
		t := tau2[group(b)]
		k := t / (t + se2[b])
		p.Mean[b] = p.Mean[a] + k*(p.Mean[b]-p.Mean[a])
	}
}

// poolGroups returns the number of groups event buckets pool their variances in and each
// bucket's group: its kind (pooling buckets together), or with PoolByRoot its kind under its
// root bucket.
func (s *PopulationStats) poolGroups() (int, func(b int) int) {
	l := s.layout
	nk := len(l.Kinds) + 1
	if !s.cfg.PoolByRoot {
		return nk, func(b int) int { return l.BucketKind[b] + 1 }
	}
	return nk * l.NumBuckets(), func(b int) int { return l.root(b)*nk + l.BucketKind[b] + 1 }
}

func sq(x float64) float64 { return x * x }

// ReferenceFrom returns pop as the reference of a PopulationStats encoding: its means as
// centres and the square roots of its within- plus between-user variances as scales (NaN
// centre and scale 1 where pop models nothing): how each release's population becomes the next
// one's public reference.
func ReferenceFrom(pop *Population) Reference {
	ref := Reference{Center: slices.Clone(pop.Mean), Scale: make([]float64, len(pop.Mean))}
	for b := range ref.Scale {
		ref.Scale[b] = 1
		if !math.IsNaN(pop.Mean[b]) {
			if v := pop.Within[b] + pop.Between[b]; v > 0 {
				ref.Scale[b] = math.Sqrt(v)
			}
		}
	}
	return ref
}

// ReferenceByKind returns a public reference from windows that describe nobody in particular
// (for example synthetic typists'): each dense bucket gets the windows' mean and standard
// deviation, every other bucket the mean of all events of its kind (a pooling bucket: of all
// events it pools, by offset group), since such windows say nothing about any one key or
// digraph, and scale 1. Dense entries need their scale (log-times beside rates of a few
// percent); event buckets share their units already, and standardising them would spend the
// norm budget on larger numbers: on the Aalto data at epsilon 8 it lost coverage and raised the
// mean EER from 5.29% to 5.85%. A bucket without events gets centre NaN; a scale without
// spread, 1.
func ReferenceByKind(l *Layout, windows []Window) (Reference, error) {
	if err := l.Validate(); err != nil {
		return Reference{}, err
	}
	acc := newAccumulator(l.NumBuckets())
	for i, w := range windows {
		if err := l.checkWindow(w); err != nil {
			return Reference{}, fmt.Errorf("window %d: %w", i, err)
		}
		acc.addWindow(l, w, 1)
	}
	dense := func(b int) bool { return b >= l.DenseBase && b < l.DenseBase+l.NumDense }
	// Group: the kind for event buckets, maxKinds+1+offset group for pooling buckets.
	key := func(b int) int {
		if k := l.BucketKind[b]; k >= 0 {
			return k
		}
		return maxKinds + 1 + l.Offset[b]
	}
	n, sum, sumSq := map[int]float64{}, map[int]float64{}, map[int]float64{}
	for b := range acc.n {
		if !dense(b) {
			n[key(b)] += acc.n[b]
			sum[key(b)] += acc.sum[b]
			sumSq[key(b)] += acc.sumSq[b]
		}
	}
	ref := Reference{Center: make([]float64, l.NumBuckets()), Scale: make([]float64, l.NumBuckets())}
	for b := range ref.Center {
		cn, cs, cq := n[key(b)], sum[key(b)], sumSq[key(b)]
		if dense(b) {
			cn, cs, cq = acc.n[b], acc.sum[b], acc.sumSq[b]
		}
		ref.Center[b], ref.Scale[b] = math.NaN(), 1
		if cn == 0 {
			continue
		}
		m := cs / cn
		ref.Center[b] = m
		if v := cq/cn - m*m; dense(b) && v > 1e-12 {
			ref.Scale[b] = math.Sqrt(v)
		}
	}
	return ref, nil
}
