package keystroke

import (
	"math"
	"slices"
)

// Window summary of TimingFeatureSet: how a window's timings are distributed as a whole, and
// habits that show in rates rather than timings (corrections, rollover, shift). Entries that a
// window cannot support (no shift pressed, no overlapping keys) are NaN: missing, not zero.
var summaryNames = [...]string{
	"mean hold time", "spread of hold times", "shortest hold times (10th percentile)", "short hold times (25th percentile)", "median hold time", "long hold times (75th percentile)", "longest hold times (90th percentile)",
	"mean key-to-key interval", "spread of key-to-key intervals", "fastest key-to-key intervals (10th percentile)", "fast key-to-key intervals (25th percentile)", "median key-to-key interval", "slow key-to-key intervals (75th percentile)", "slowest key-to-key intervals (90th percentile)",
	"mean release-to-press gap", "spread of release-to-press gaps", "most overlapped release-to-press gaps (10th percentile)", "overlapped release-to-press gaps (25th percentile)", "median release-to-press gap", "long release-to-press gaps (75th percentile)", "longest release-to-press gaps (90th percentile)",
	"share of overlapping keys", "share of keys released out of order", "backspace rate", "pause rate", "shift rate", "caps lock rate",
	"shift hold time relative to other keys", "space hold time relative to other keys", "interval before space relative to others", "interval after space relative to others",
}

// NumSummaryFeatures is the length of Timings.Summary.
const NumSummaryFeatures = len(summaryNames)

// Offsets into the summary.
const (
	sumHold, sumDD, sumUD = 0, 7, 14
)

const (
	sumOverlap = 21 + iota
	sumInversion
	sumBackspace
	sumPause
	sumShift
	sumCapsLock
	sumShiftHold
	sumSpaceHold
	sumBeforeSpace
	sumAfterSpace
)

// SummaryNames describes each entry of Timings.Summary in plain words, in order.
func SummaryNames() []string { return summaryNames[:] }

// summarise fills dst (NumSummaryFeatures long) from window, whose timings e.timings has
// computed, with e's buffers as scratch.
func (e *TimingExtractor) summarise(dst []float64, window []Keystroke) {
	e.hold, e.dd, e.ud = e.hold[:0], e.dd[:0], e.ud[:0]
	var (
		backspace, shift, caps, pauses, pairs, overlaps, inversions, releasePairs float64
		shiftHold, spaceHold, beforeSpace, afterSpace                             stat
	)
	for i, k := range window {
		switch k.Code {
		case CodeBackspace:
			backspace++
		case CodeShift:
			shift++
		case 20:
			caps++
		}
		if v := e.logHold[i]; v == v {
			e.hold = append(e.hold, v)
			switch k.Code {
			case CodeShift:
				shiftHold.add(v)
			case CodeSpace:
				spaceHold.add(v)
			}
		}
		if i == 0 {
			continue
		}
		prev := window[i-1]
		if k.Press <= prev.Press {
			continue
		}
		pairs++
		v := e.logDD[i]
		if v != v {
			pauses++
			continue
		}
		e.dd = append(e.dd, v)
		if k.Code == CodeSpace {
			beforeSpace.add(v)
		}
		if prev.Code == CodeSpace {
			afterSpace.add(v)
		}
		if ud := e.gapUD[i]; ud == ud {
			e.ud = append(e.ud, ud)
			if ud < 0 {
				overlaps++
				if _, ok := k.Hold(); ok {
					releasePairs++
					if k.Release < prev.Release {
						inversions++
					}
				}
			}
		}
	}
	n := float64(len(window))
	distribution(dst[sumHold:sumHold+7], e.hold)
	distribution(dst[sumDD:sumDD+7], e.dd)
	distribution(dst[sumUD:sumUD+7], e.ud)
	dst[sumOverlap] = ratio(overlaps, float64(len(e.ud)))
	dst[sumInversion] = ratio(inversions, releasePairs)
	dst[sumBackspace] = backspace / n
	dst[sumPause] = ratio(pauses, pairs)
	dst[sumShift] = shift / n
	dst[sumCapsLock] = caps / n
	holdMean, ddMean := dst[sumHold], dst[sumDD]
	dst[sumShiftHold] = shiftHold.mean() - holdMean
	dst[sumSpaceHold] = spaceHold.mean() - holdMean
	dst[sumBeforeSpace] = beforeSpace.mean() - ddMean
	dst[sumAfterSpace] = afterSpace.mean() - ddMean
}

// distribution writes mean, standard deviation and the 10, 25, 50, 75 and 90th percentiles of
// xs into dst[0:7], or NaNs when xs has fewer than two values. It sorts xs.
func distribution(dst, xs []float64) {
	if len(xs) < 2 {
		for i := range dst {
			dst[i] = math.NaN()
		}
		return
	}
	slices.Sort(xs)
	dst[0], dst[1] = meanStd(xs)
	for i, p := range [...]float64{0.1, 0.25, 0.5, 0.75, 0.9} {
		dst[2+i] = quantile(xs, p)
	}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// stat is a running mean.
type stat struct{ sum, n float64 }

func (s *stat) add(v float64) { s.sum += v; s.n++ }

func (s stat) mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.sum / s.n
}
