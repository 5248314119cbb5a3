package models

import (
	"fmt"
	"math"
)

// A layout's features can differ in spread by orders of magnitude: within one user, the mouse
// layout's share of sub-movements per point varies by about 0.08 and the time from stopping to
// pressing by about 2.2 (log-milliseconds). PopulationStats bounds and noises every bucket on
// one footing, in the reference's scale: with a scale of 1 for every bucket it clamps the
// variances of the wide features (MaxVar) and drowns the differences between users of the
// narrow ones in noise. A layout whose reference comes from nobody's data (keystroke's
// synthetic typists) has its scales; one without (mouse) learns them with SpreadStats, in the
// round that learns its centres.
//
// A device describes each root bucket by the logarithm of its within-bucket standard deviation,
// which spans that range in a few units, so that one bound and one noise suit every feature;
// the mean of the logarithms over devices is the geometric mean of their spreads.

// spreadMaxLog bounds a device's log standard deviation: spreads from e^-3 (0.05) to e^3 (20)
// in the layout's units are described as they are.
const spreadMaxLog = 3

// SpreadStats encodes a device's windows into a bounded contribution describing the spread of
// each root bucket, and decodes the noisy sum of many into a scale for every bucket. It holds
// no mutable state.
type SpreadStats struct {
	layout *Layout
	roots  []int
}

// NewSpreadStats returns the encoding for layout l: two entries (1 for a described bucket, and
// its clamped log standard deviation) for each root bucket, those without a parent.
func NewSpreadStats(l *Layout) (*SpreadStats, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	s := &SpreadStats{layout: l}
	for b := 0; b < l.NumBuckets(); b++ {
		if l.Parent[b] < 0 {
			s.roots = append(s.roots, b)
		}
	}
	return s, nil
}

// Len is the length of a contribution.
func (s *SpreadStats) Len() int { return 2 * len(s.roots) }

// Clip is the norm every contribution stays within.
func (s *SpreadStats) Clip() float64 {
	return math.Sqrt(float64(len(s.roots)) * (1 + spreadMaxLog*spreadMaxLog))
}

// Contribute returns the device's contribution over its windows: for every root bucket with at
// least two events and some spread, 1 and the log of the standard deviation of its events.
func (s *SpreadStats) Contribute(windows []Window) ([]float64, error) {
	l := s.layout
	acc := newAccumulator(l.NumBuckets())
	for i, w := range windows {
		if err := l.checkWindow(w); err != nil {
			return nil, fmt.Errorf("window %d: %w", i, err)
		}
		acc.addWindow(l, w, 1)
	}
	out := make([]float64, s.Len())
	for i, b := range s.roots {
		n := acc.n[b]
		if n < 2 {
			continue
		}
		m := acc.sum[b] / n
		v := max(acc.sumSq[b]-n*m*m, 0) / (n - 1)
		if !(v > 0) {
			continue
		}
		// The log of a sample standard deviation of n events is low by about 1/(2(n-1)) +
		// 1/(6(n-1)^2) (the digamma expansion of E log chi^2): added back, so that devices
		// with few events do not pull the geometric mean down.
		k := n - 1
		out[2*i], out[2*i+1] = 1, clamp(0.5*math.Log(v)+1/(2*k)+1/(6*k*k), spreadMaxLog)
	}
	return out, nil
}

// Decode returns a scale for every bucket of the layout from the sum of devices' contributions,
// of which every entry carries Gaussian noise of standard deviation noiseStd: a root described
// by more devices than 1 plus margin standard deviations of the noise gets the geometric mean of
// their spreads, every other bucket its root's. A bucket whose root is not described gets 1.
func (s *SpreadStats) Decode(sum []float64, noiseStd, margin float64) ([]float64, error) {
	if len(sum) != s.Len() {
		return nil, fmt.Errorf("%w: spread statistics have %d entries, want %d", ErrBadData, len(sum), s.Len())
	}
	if !(noiseStd >= 0) || math.IsInf(noiseStd, 1) || !(margin >= 0) {
		return nil, fmt.Errorf("%w: noise standard deviation %v, margin %v", ErrBadData, noiseStd, margin)
	}
	l := s.layout
	rootScale := make(map[int]float64, len(s.roots))
	for i, b := range s.roots {
		devices, logs := sum[2*i], sum[2*i+1]
		if math.IsNaN(devices) || math.IsNaN(logs) || math.IsInf(devices, 0) || math.IsInf(logs, 0) {
			return nil, fmt.Errorf("%w: spread statistic of bucket %d is %v, %v", ErrBadData, b, devices, logs)
		}
		if devices >= 1+margin*noiseStd {
			rootScale[b] = math.Exp(clamp(logs/devices, spreadMaxLog))
		}
	}
	out := make([]float64, l.NumBuckets())
	for b := range out {
		out[b] = 1
		if sc, ok := rootScale[l.root(b)]; ok {
			out[b] = sc
		}
	}
	return out, nil
}
