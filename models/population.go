package models

import (
	"fmt"
	"math"
)

// The population model is what the federation learns about everybody's behaviour: for every
// bucket, the typical value, how much one person varies around their own habit (within-user
// variance) and how much people differ from each other (between-user variance). It is the
// background against which a personal profile is judged, as a universal background model is
// in speaker verification, and the prior from which a profile learnt on a few enrolment windows
// borrows strength.
//
// Every device contributes sums over its own enrolment (Contribution); the population is a
// function of the sum of all contributions (NewPopulation). A plain sum is exactly what
// federated averaging with secure aggregation computes, so the population model needs no raw
// event to leave a device.

// Per-bucket entries of a contribution vector.
const (
	statUsers    = iota // 1 when the device has seen the bucket
	statMean            // the device's mean in the bucket
	statMeanSq          // its square
	statWithinSS        // sum of squared deviations from the device's mean
	statDof             // degrees of freedom of that sum: events - 1
	statEvents          // number of events
	statsPerBucket
)

// ContributionLen is the length of one device's contribution vector for layout l.
func ContributionLen(l *Layout) int { return statsPerBucket * l.NumBuckets() }

// Contribution returns one device's sufficient statistics over its own windows, to be summed
// with other devices' into the input of NewPopulation.
func Contribution(l *Layout, windows []Window) ([]float64, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	acc := newAccumulator(l.NumBuckets())
	for i, w := range windows {
		if err := l.checkWindow(w); err != nil {
			return nil, fmt.Errorf("window %d: %w", i, err)
		}
		acc.addWindow(l, w, 1)
	}
	out := make([]float64, ContributionLen(l))
	for b := range acc.n {
		n := acc.n[b]
		if n == 0 {
			continue
		}
		m := acc.sum[b] / n
		s := out[b*statsPerBucket : (b+1)*statsPerBucket]
		s[statUsers] = 1
		s[statMean] = m
		s[statMeanSq] = m * m
		s[statWithinSS] = max(acc.sumSq[b]-n*m*m, 0)
		s[statDof] = n - 1
		s[statEvents] = n
	}
	return out, nil
}

// accumulator sums a user's events per bucket, each event counting in its bucket and in every
// bucket it backs off to.
type accumulator struct {
	n, sum, sumSq []float64
}

func newAccumulator(nb int) accumulator {
	return accumulator{n: make([]float64, nb), sum: make([]float64, nb), sumSq: make([]float64, nb)}
}

func (a *accumulator) add(l *Layout, b int, v, weight float64) {
	for ; b >= 0; b = l.Parent[b] {
		a.n[b] += weight
		a.sum[b] += weight * v
		a.sumSq[b] += weight * v * v
	}
}

func (a *accumulator) addWindow(l *Layout, w Window, weight float64) {
	for _, e := range w.Events {
		a.add(l, e.Bucket, e.Value, weight)
	}
	for d, v := range w.Dense {
		if !math.IsNaN(v) {
			a.add(l, l.DenseBase+d, v, weight)
		}
	}
}

// PopulationConfig sets when a bucket has enough evidence to be modelled.
type PopulationConfig struct {
	// MinUsers is the number of devices that must have seen a bucket (default 3).
	MinUsers float64
	// MinDof is the number of within-user degrees of freedom a bucket needs (default 5).
	MinDof float64
}

func (c *PopulationConfig) validate() error {
	if c.MinUsers == 0 {
		c.MinUsers = 3
	}
	if c.MinDof == 0 {
		c.MinDof = 5
	}
	if !(c.MinUsers >= 2) || !(c.MinDof >= 1) {
		return fmt.Errorf("models: population needs at least 2 users and 1 degree of freedom per bucket, got %v and %v", c.MinUsers, c.MinDof)
	}
	return nil
}

// Population is the federated background model derived from summed contributions. Mean is NaN
// for buckets without enough evidence.
type Population struct {
	Layout *Layout
	// Users is the number of devices that contributed.
	Users float64
	// Mean, Within and Between are per bucket: the mean of users' means, the pooled
	// within-user variance and the variance of users' means net of sampling noise.
	Mean, Within, Between []float64
	// Freq is the number of events seen per bucket, over all devices.
	Freq []float64
	// FromStats marks a population decoded from the deployable statistics round
	// (PopulationStats), whose user models take the layout's ThresholdStats.
	FromStats bool
	// Reference, when set, is the reference the statistics were taken relative to, carried
	// for layouts that learn theirs (ReferenceStats): a population's bounds are in its
	// reference's scales, so a device checks both (ReferenceStats.CheckReference,
	// PopulationStats.CheckPopulation).
	Reference *Reference
}

// NewPopulation derives the population model from the sum of devices' contributions.
func NewPopulation(l *Layout, sum []float64, cfg PopulationConfig) (*Population, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(sum) != ContributionLen(l) {
		return nil, fmt.Errorf("%w: population statistics have %d entries, layout %s needs %d", ErrBadData, len(sum), l.Name, ContributionLen(l))
	}
	for i, v := range sum {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: population statistic %d is %v", ErrBadData, i, v)
		}
	}
	nb := l.NumBuckets()
	p := &Population{Layout: l, Mean: make([]float64, nb), Within: make([]float64, nb), Between: make([]float64, nb), Freq: make([]float64, nb)}
	for b := 0; b < nb; b++ {
		s := sum[b*statsPerBucket : (b+1)*statsPerBucket]
		u := s[statUsers]
		p.Users = max(p.Users, u)
		p.Freq[b] = max(s[statEvents], 0)
		if u < cfg.MinUsers || s[statDof] < cfg.MinDof || s[statWithinSS] <= 0 {
			p.Mean[b] = math.NaN()
			continue
		}
		m := s[statMean] / u
		within := s[statWithinSS] / s[statDof]
		perUser := s[statEvents] / u
		// Users' means scatter by the between-user variance plus their own sampling noise.
		between := s[statMeanSq]/u - m*m - within/perUser
		p.Mean[b], p.Within[b], p.Between[b] = m, within, max(between, 0.01*within)
	}
	return p, nil
}

// usable reports whether bucket b has a population model.
func (p *Population) usable(b int) bool { return !math.IsNaN(p.Mean[b]) }

// Modelled is the number of buckets the population models: what survived the noise.
func (p *Population) Modelled() int {
	n := 0
	for b := range p.Mean {
		if p.usable(b) {
			n++
		}
	}
	return n
}
