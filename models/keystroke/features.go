package keystroke

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Timings outside these bounds are not typing rhythm but pauses, stuck keys or broken clocks,
// and are left out of the features.
const (
	maxHold    = 2 * time.Second
	maxLatency = 3 * time.Second
	minWindow  = 5
)

// FeatureSet names the features Extractor produces; models trained on one feature set only make
// sense on vectors of the same set.
const FeatureSet = "keystroke-timing-v1"

// FeatureNames describes each entry of a feature vector in plain words, in order.
var featureNames = [...]string{
	"mean hold time", "spread of hold times", "short hold times (25th percentile)", "median hold time", "long hold times (75th percentile)",
	"mean key-to-key interval", "spread of key-to-key intervals", "fast key-to-key intervals (25th percentile)", "median key-to-key interval", "slow key-to-key intervals (75th percentile)",
	"mean release-to-press gap", "spread of release-to-press gaps", "median release-to-press gap",
	"share of overlapping keys", "backspace rate", "shift hold time",
}

// NumFeatures is the length of a feature vector.
const NumFeatures = len(featureNames)

// FeatureNames returns a plain-words description of every feature, in vector order.
func FeatureNames() []string { return featureNames[:] }

// ErrWindowTooSparse reports a window with too few usable timings to describe.
var ErrWindowTooSparse = errors.New("keystroke: window has too few usable timings")

// Extractor computes feature vectors. It keeps scratch buffers so that Extract allocates nothing
// once warmed up; it is not safe for concurrent use.
type Extractor struct {
	hold, dd, ud []float64
}

// Extract writes the NumFeatures features of window into dst.
//
// Times are taken as log-milliseconds and scaled by fixed population constants (roughly: a
// typical hold of 100 ms, a typical interval of 200 ms), so that every feature is of order one
// and a model shared by many users sees comparable inputs.
func (e *Extractor) Extract(dst []float64, window []Keystroke) error {
	if len(dst) != NumFeatures {
		return fmt.Errorf("keystroke: destination has %d entries, want %d", len(dst), NumFeatures)
	}
	e.hold, e.dd, e.ud = e.hold[:0], e.dd[:0], e.ud[:0]
	var backspaces, overlaps, pairs int
	var shiftHold float64
	var shifts int
	for i, k := range window {
		if h, ok := k.Hold(); ok {
			e.hold = append(e.hold, logMs(h))
			if k.Code == CodeShift {
				shiftHold += logMs(h)
				shifts++
			}
		}
		if k.Code == CodeBackspace {
			backspaces++
		}
		if i == 0 {
			continue
		}
		prev := window[i-1]
		dd := k.Press - prev.Press
		if dd <= 0 || dd > maxLatency {
			continue
		}
		e.dd = append(e.dd, logMs(dd))
		if prev.Release != 0 {
			ud := k.Press - prev.Release
			if ud > -maxHold && ud <= maxLatency {
				pairs++
				e.ud = append(e.ud, float64(ud)/float64(time.Millisecond))
				if ud < 0 {
					overlaps++
				}
			}
		}
	}
	if len(e.hold) < minWindow || len(e.dd) < minWindow {
		return fmt.Errorf("%w: %d hold times and %d intervals, want at least %d each", ErrWindowTooSparse, len(e.hold), len(e.dd), minWindow)
	}
	const holdMean, holdScale = 4.6, 0.4 // log(100 ms)
	const ddMean, ddScale = 5.3, 0.6     // log(200 ms)
	const udScale = 200.0                // ms
	f := dst[:0]
	f = appendSummary(f, e.hold, holdMean, holdScale)
	f = appendSummary(f, e.dd, ddMean, ddScale)
	if len(e.ud) > 0 {
		slices.Sort(e.ud)
		m, sd := meanStd(e.ud)
		f = append(f, m/udScale, sd/udScale, quantile(e.ud, 0.5)/udScale)
	} else {
		f = append(f, 0, 0, 0)
	}
	overlapShare := 0.0
	if pairs > 0 {
		overlapShare = float64(overlaps) / float64(pairs)
	}
	shift := 0.0
	if shifts > 0 {
		shift = (shiftHold/float64(shifts) - holdMean) / holdScale
	}
	f = append(f, 4*overlapShare, 10*float64(backspaces)/float64(len(window)), shift)
	_ = f
	return nil
}

func appendSummary(f, xs []float64, mean, scale float64) []float64 {
	slices.Sort(xs)
	m, sd := meanStd(xs)
	return append(f,
		(m-mean)/scale, sd/scale,
		(quantile(xs, 0.25)-mean)/scale, (quantile(xs, 0.5)-mean)/scale, (quantile(xs, 0.75)-mean)/scale)
}

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
