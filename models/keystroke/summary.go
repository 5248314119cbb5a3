package keystroke

import (
	"math"
	"math/bits"
	"slices"
	"time"
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

// summarise fills dst (NumSummaryFeatures long) with the summary of window and appends its
// timing events to events, in one pass over the window: each keystroke's timings are computed
// once (log hold time, log press-to-press interval and asinh(release-to-press gap / 20 ms)
// from the key before) and go both to the summary's series and to the events.
func (e *TimingExtractor) summarise(dst []float64, events []Event, window []Keystroke) []Event {
	e.init()
	classOf, logTab, gapTab := e.classOf[:maxKeyCode+1], e.logTab, e.gapTab
	prevClass := -1
	// The series and events are local while they grow, so that their lengths stay in registers.
	hold, dd, ud := e.hold[:0], e.dd[:0], e.ud[:0]
	holdK, ddK, udK := e.holdK[:0], e.ddK[:0], e.udK[:0]
	var (
		backspace, shift, caps, pauses, pairs, overlaps, inversions, releasePairs float64
		shiftHold, spaceHold, beforeSpace, afterSpace                             stat
	)
	// keyed stays true while every timing of the series is a table entry (keys >= 0).
	holdKeyed, ddKeyed, udKeyed := e.tabsOrdered, e.tabsOrdered, e.tabsOrdered
	nan := math.NaN()
	prevHeld, prevHold := false, nan
	for i, k := range window {
		switch k.Code {
		case CodeBackspace:
			backspace++
		case CodeShift:
			shift++
		case 20:
			caps++
		}
		lh, ld, lu := nan, nan, nan
		h, held := k.Hold()
		if held {
			v, key := lookup(logTab, uint64(h))
			if key < 0 {
				v = logMs(h)
			}
			lh = v
			hold = append(hold, v)
			holdK = append(holdK, uint16(key))
			holdKeyed = holdKeyed && key >= 0
			if k.Code == CodeShift {
				shiftHold.add(v)
			}
			spaceHold.addIf(v, k.Code == CodeSpace)
		}
		if i > 0 {
			prev := &window[i-1]
			// A non-increasing press time is no pair; a pair further apart than
			// maxDigraphGap is a pause.
			switch d := k.Press - prev.Press; {
			case d <= 0:
			case d > maxDigraphGap:
				pairs++
				pauses++
			default:
				pairs++
				v, key := lookup(logTab, uint64(d))
				if key < 0 {
					v = logMs(d)
				}
				ld = v
				dd = append(dd, v)
				ddK = append(ddK, uint16(key))
				ddKeyed = ddKeyed && key >= 0
				beforeSpace.addIf(v, k.Code == CodeSpace)
				afterSpace.addIf(v, prev.Code == CodeSpace)
				if !prevHeld {
					break
				}
				g := k.Press - prev.Release
				u, key := lookup(gapTab, uint64(g-gapTabMin*time.Millisecond))
				if key < 0 {
					u = gapMs(g)
				}
				lu = u
				ud = append(ud, u)
				udK = append(udK, uint16(key))
				udKeyed = udKeyed && key >= 0
				overlap := u < 0
				overlaps += one(overlap)
				releasePairs += one(overlap && held)
				inversions += one(overlap && held && k.Release < prev.Release)
			}
		}
		prevHeld = held
		// The events: the hold of a key of known class, and with the key before when that
		// was of known class too, the digraph's timings and both holds in its context.
		if uint(k.Code) > maxKeyCode { // KeyClass reports false
			prevClass = -1
			continue
		}
		c := int(classOf[k.Code])
		if lh == lh {
			events = append(events, Event{Bucket: c, Value: lh})
		}
		if prevClass >= 0 {
			pair := prevClass*NumKeyClasses + c
			if ld == ld {
				events = append(events, Event{Bucket: ddBase + pair, Value: ld})
			}
			if lu == lu {
				events = append(events, Event{Bucket: udBase + pair, Value: lu})
			}
			if lh == lh {
				events = append(events, Event{Bucket: hpBase + pair, Value: lh})
			}
			if prevHold == prevHold {
				events = append(events, Event{Bucket: hnBase + pair, Value: prevHold})
			}
		}
		prevClass, prevHold = c, lh
	}
	nf := float64(len(window))
	e.hold, e.dd, e.ud = hold, dd, ud
	e.holdK, e.ddK, e.udK = holdK, ddK, udK
	e.sortSeries(hold, holdK, holdKeyed, e.logTab)
	e.sortSeries(dd, ddK, ddKeyed, e.logTab)
	e.sortSeries(ud, udK, udKeyed, e.gapTab)
	distribution(dst[sumHold:sumHold+7], hold)
	distribution(dst[sumDD:sumDD+7], dd)
	distribution(dst[sumUD:sumUD+7], ud)
	dst[sumOverlap] = ratio(overlaps, float64(len(e.ud)))
	dst[sumInversion] = ratio(inversions, releasePairs)
	dst[sumBackspace] = backspace / nf
	dst[sumPause] = ratio(pauses, pairs)
	dst[sumShift] = shift / nf
	dst[sumCapsLock] = caps / nf
	holdMean, ddMean := dst[sumHold], dst[sumDD]
	dst[sumShiftHold] = shiftHold.mean() - holdMean
	dst[sumSpaceHold] = spaceHold.mean() - holdMean
	dst[sumBeforeSpace] = beforeSpace.mean() - ddMean
	dst[sumAfterSpace] = afterSpace.mean() - ddMean
	return events
}

// sortSeries sorts the timings xs of one series: by their keys in tab when keyed (all are table
// entries) and few enough for the counts, otherwise as floats.
func (e *TimingExtractor) sortSeries(xs []float64, keys []uint16, keyed bool, tab []float64) {
	if keyed && len(xs) <= maxKeyedSort {
		e.sorter.sort(xs, keys, tab)
	} else {
		slices.Sort(xs)
	}
}

// maxKeyedSort is the longest series keySorter sorts: its counts are bytes.
const maxKeyedSort = 255

// keySorter sorts a series of timings that are all entries of a non-decreasing table by their
// keys (table indices) instead of their values: a bit per key present and a count per key, then
// a scan of the set bits in order. The values come out exactly as slices.Sort puts them, at a
// fraction of its cost on a window's few dozen timings, most of them repeats of a few keys. Both
// arrays are all zero between calls.
type keySorter struct {
	present [gapTabLen / 64]uint64
	count   [gapTabLen]uint8
}

// sort writes tab[keys[i]] into xs (as long as keys, at most maxKeyedSort) in ascending order.
// Keys must index tab, which has at most gapTabLen entries and must be non-decreasing.
func (s *keySorter) sort(xs []float64, keys []uint16, tab []float64) {
	if len(keys) == 0 {
		return
	}
	lo, hi := keys[0], keys[0]
	for _, k := range keys {
		s.count[k]++
		s.present[k>>6] |= 1 << (k & 63)
		lo, hi = min(lo, k), max(hi, k)
	}
	xs = xs[:len(keys)]
	i := 0
	for w := int(lo >> 6); w <= int(hi>>6); w++ {
		word := s.present[w]
		s.present[w] = 0
		for word != 0 {
			k := w<<6 | bits.TrailingZeros64(word)
			word &= word - 1
			v := tab[k]
			for c := s.count[k]; c > 0; c-- {
				xs[i] = v
				i++
			}
			s.count[k] = 0
		}
	}
}

// distribution writes mean, standard deviation and the 10, 25, 50, 75 and 90th percentiles of
// sorted xs into dst[0:7], or NaNs when xs has fewer than two values.
func distribution(dst, xs []float64) {
	if len(xs) < 2 {
		for i := range dst {
			dst[i] = math.NaN()
		}
		return
	}
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

// addIf adds v when b holds, without a branch on b (spaces come at no predictable place): v
// times 0 adds nothing to a sum that started at +0.
func (s *stat) addIf(v float64, b bool) {
	m := one(b)
	s.sum += v * m
	s.n += m
}

// one is 1 when b holds, else 0, without a branch.
func one(b bool) float64 {
	var i int
	if b {
		i = 1
	}
	return float64(i)
}

func (s stat) mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.sum / s.n
}
