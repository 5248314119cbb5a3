package keystroke

import (
	"errors"
	"math"
	"time"
)

// Timings outside these bounds are not typing rhythm but pauses, stuck keys or broken clocks,
// and are left out of the features.
const (
	maxHold    = 2 * time.Second
	maxLatency = 3 * time.Second
	minWindow  = 5
)

// ErrWindowTooSparse reports a window with too few usable timings to describe.
var ErrWindowTooSparse = errors.New("keystroke: window has too few usable timings")

func logMs(d time.Duration) float64 {
	return math.Log(math.Max(float64(d)/float64(time.Millisecond), 1))
}

func meanStd(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)))
}

// quantile returns the p-quantile of sorted xs by linear interpolation.
func quantile(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[lo+1]*frac
}
