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
// timing events to events. Each keystroke's timings are computed once (log hold time, log
// press-to-press interval and asinh(release-to-press gap / 20 ms) from the key before), kept
// per keystroke, and go both to the summary's series and to the events. The work is split into
// passes over the window that each keep few values live: one pass doing it all held more
// values than the processor has registers and spent most of its instructions moving them to
// and from the stack.
func (e *TimingExtractor) summarise(dst []float64, events []Event, window []Keystroke) []Event {
	e.init()
	n := len(window)
	if cap(e.tm) < n {
		e.tm = make([]keyTimings, n)
		// Room past the series' ends for keySorter.sort's copies.
		e.hold, e.dd, e.ud = make([]float64, n+sortSlack), make([]float64, n+sortSlack), make([]float64, n+sortSlack)
		e.holdK, e.ddK, e.udK = make([]uint16, n), make([]uint16, n), make([]uint16, n)
	}
	tm := e.tm[:n]
	holdKeyed := e.holds(tm, window)
	ddKeyed, pairs, pauses := e.intervals(tm, window)
	udKeyed := e.gaps(tm, window)
	hold, dd, ud := e.hold, e.dd, e.ud
	e.sortSeries(hold, e.holdK, holdKeyed && e.tabsOrdered, e.logTab)
	e.sortSeries(dd, e.ddK, ddKeyed && e.tabsOrdered, e.logTab)
	e.sortSeries(ud, e.udK, udKeyed && e.tabsOrdered, e.gapTab)
	distributions(dst, hold, dd, ud)
	rates(dst, window, tm, len(ud), pairs, pauses)
	return e.events(events, window, tm)
}

// keyTimings are one keystroke's timings: the log hold time, and from the key before, the log
// press-to-press interval and the asinh release-to-press gap, each NaN where the keystroke has
// none.
type keyTimings struct {
	hold, dd, ud float64
}

// rates fills the summary's rates and relative timings (dst[sumOverlap:]) from the window's
// keystroke timings tm; dst's hold and interval means must be filled. gaps is the number of
// release-to-press gaps; pairs and pauses are as intervals returns them.
func rates(dst []float64, window []Keystroke, tm []keyTimings, gaps, pairs, pauses int) {
	tm = tm[:len(window)]
	// The running means are plain locals rather than stats, which would live in memory and
	// make every addition wait for the one before it to be stored.
	var (
		backspace, shift, caps                   int
		shiftHold, shiftN, spaceHold, spaceN     float64
		beforeSpace, beforeN, afterSpace, afterN float64
	)
	prevSpace := 0.0
	for i := range window {
		code := window[i].Code
		backspace += b2i(code == CodeBackspace)
		shift += b2i(code == CodeShift)
		caps += b2i(code == 20)
		// Spaces and shifts come at no predictable place: adding v times 0 or 1 adds nothing
		// (a sum that starts at +0 stays unchanged by ±0) or v, without a branch.
		space, sh := one(code == CodeSpace), one(code == CodeShift)
		if v := tm[i].hold; v == v {
			shiftHold += v * sh
			shiftN += sh
			spaceHold += v * space
			spaceN += space
		}
		if v := tm[i].dd; v == v {
			beforeSpace += v * space
			beforeN += space
			afterSpace += v * prevSpace
			afterN += prevSpace
		}
		prevSpace = space
	}
	// Overlapping digraphs (a negative release-to-press gap), those whose second key was held
	// too, and those released in the reverse order. Every test is made and the results are
	// combined as bits: whether keys overlap is as good as random, and && branched on it.
	var overlaps, releasePairs, inversions int
	for i := 1; i < len(window); i++ {
		overlap := b2i(tm[i].ud < 0)
		held := overlap & b2i(tm[i].hold == tm[i].hold)
		overlaps += overlap
		releasePairs += held
		inversions += held & b2i(window[i].Release < window[i-1].Release)
	}
	nf := float64(len(window))
	dst[sumOverlap] = ratio(float64(overlaps), float64(gaps))
	dst[sumInversion] = ratio(float64(inversions), float64(releasePairs))
	dst[sumBackspace] = float64(backspace) / nf
	dst[sumPause] = ratio(float64(pauses), float64(pairs))
	dst[sumShift] = float64(shift) / nf
	dst[sumCapsLock] = float64(caps) / nf
	holdMean, ddMean := dst[sumHold], dst[sumDD]
	dst[sumShiftHold] = stat{shiftHold, shiftN}.mean() - holdMean
	dst[sumSpaceHold] = stat{spaceHold, spaceN}.mean() - holdMean
	dst[sumBeforeSpace] = stat{beforeSpace, beforeN}.mean() - ddMean
	dst[sumAfterSpace] = stat{afterSpace, afterN}.mean() - ddMean
}

// holds sets each keystroke's log hold time in tm (NaN where the hold is not known or not
// plausible) and writes the series of hold times, with their table keys, into e.hold and
// e.holdK. It reports whether every hold time was a table entry.
//
// This and the other passes look every timing up in its table and compute the few that are not
// table entries in a second loop: a call in the first would make it keep its values on the
// stack.
func (e *TimingExtractor) holds(tm []keyTimings, window []Keystroke) (keyed bool) {
	logTab := e.logTab
	hold, keys := e.hold[:len(window)], e.holdK[:len(window)]
	tm = tm[:len(window)]
	nh, missed := 0, 0
	for i := range window {
		h, held := window[i].Hold()
		if !held {
			tm[i].hold = math.NaN()
			continue
		}
		v, key := lookup(logTab, uint64(h))
		tm[i].hold = v
		hold[nh], keys[nh] = v, uint16(key)
		nh++
		missed |= int(key)
	}
	if missed < 0 {
		j := 0
		for i := range window {
			if tm[i].hold != tm[i].hold {
				continue
			}
			if int16(keys[j]) == noKey {
				h, _ := window[i].Hold()
				tm[i].hold = logMs(h)
				hold[j] = tm[i].hold
			}
			j++
		}
	}
	e.hold, e.holdK = hold[:nh], keys[:nh]
	return missed >= 0
}

// intervals sets each keystroke's log press-to-press interval from the key before in tm (NaN
// for the first keystroke, a press time that does not increase and a pause) and writes the
// series of intervals into e.dd and e.ddK. It returns whether every interval was a table
// entry, the number of pairs of keystrokes with increasing press times and how many of those
// were pauses.
func (e *TimingExtractor) intervals(tm []keyTimings, window []Keystroke) (keyed bool, pairs, pauses int) {
	logTab := e.logTab
	dd, keys := e.dd[:len(window)], e.ddK[:len(window)]
	tm = tm[:len(window)]
	nd, missed := 0, 0
	if len(window) > 0 {
		tm[0].dd = math.NaN()
	}
	for i := 1; i < len(window); i++ {
		d := window[i].Press - window[i-1].Press
		tm[i].dd = math.NaN()
		if d <= 0 {
			continue
		}
		pairs++
		if d > maxDigraphGap {
			pauses++
			continue
		}
		v, key := lookup(logTab, uint64(d))
		tm[i].dd = v
		dd[nd], keys[nd] = v, uint16(key)
		nd++
		missed |= int(key)
	}
	if missed < 0 {
		j := 0
		for i := 1; i < len(window); i++ {
			if tm[i].dd != tm[i].dd {
				continue
			}
			if int16(keys[j]) == noKey {
				tm[i].dd = logMs(window[i].Press - window[i-1].Press)
				dd[j] = tm[i].dd
			}
			j++
		}
	}
	e.dd, e.ddK = dd[:nd], keys[:nd]
	return missed >= 0, pairs, pauses
}

// gaps sets each keystroke's release-to-press gap from the key before in tm, where the
// interval is a digraph and the key before was held, NaN elsewhere, and writes the series of
// gaps into e.ud and e.udK. It reports whether every gap was a table entry.
func (e *TimingExtractor) gaps(tm []keyTimings, window []Keystroke) (keyed bool) {
	gapTab := e.gapTab
	ud, keys := e.ud[:len(window)], e.udK[:len(window)]
	tm = tm[:len(window)]
	nu, missed := 0, 0
	if len(window) > 0 {
		tm[0].ud = math.NaN()
	}
	for i := 1; i < len(window); i++ {
		tm[i].ud = math.NaN()
		if tm[i].dd != tm[i].dd || tm[i-1].hold != tm[i-1].hold {
			continue
		}
		g := window[i].Press - window[i-1].Release
		u, key := lookup(gapTab, uint64(g-gapTabMin*time.Millisecond))
		tm[i].ud = u
		ud[nu], keys[nu] = u, uint16(key)
		nu++
		missed |= int(key)
	}
	if missed < 0 {
		j := 0
		for i := 1; i < len(window); i++ {
			if tm[i].ud != tm[i].ud {
				continue
			}
			if int16(keys[j]) == noKey {
				tm[i].ud = gapMs(window[i].Press - window[i-1].Release)
				ud[j] = tm[i].ud
			}
			j++
		}
	}
	e.ud, e.udK = ud[:nu], keys[:nu]
	return missed >= 0
}

// events appends the window's timing events: the hold of each key of known class, and with
// the key before when that was of known class too, the digraph's timings and both holds in its
// context.
func (e *TimingExtractor) events(events []Event, window []Keystroke, tm []keyTimings) []Event {
	classOf := e.classOf[:maxKeyCode+1]
	tm = tm[:len(window)]
	start := len(events)
	events = slices.Grow(events, 5*len(window))
	out := events[start : start+5*len(window)]
	ne := 0
	prevClass := -1
	for i := range window {
		code := window[i].Code
		if uint(code) > maxKeyCode { // KeyClass reports false
			prevClass = -1
			continue
		}
		c := int(classOf[code])
		t := &tm[i]
		if t.hold == t.hold {
			out[ne] = Event{Bucket: c, Value: t.hold}
			ne++
		}
		if prevClass >= 0 && i > 0 {
			pair := prevClass*NumKeyClasses + c
			if t.dd == t.dd {
				out[ne] = Event{Bucket: ddBase + pair, Value: t.dd}
				ne++
			}
			if t.ud == t.ud {
				out[ne] = Event{Bucket: udBase + pair, Value: t.ud}
				ne++
			}
			if t.hold == t.hold {
				out[ne] = Event{Bucket: hpBase + pair, Value: t.hold}
				ne++
			}
			if v := tm[i-1].hold; v == v {
				out[ne] = Event{Bucket: hnBase + pair, Value: v}
				ne++
			}
		}
		prevClass = c
	}
	return events[:start+ne]
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
// Keys must index tab, which has at most gapTabLen entries and must be non-decreasing. When xs
// has room for sortSlack more values past len(keys), which it leaves unspecified, each key's
// copies are written sortSlack at a time without a branch on their count (mostly 1 to 3).
func (s *keySorter) sort(xs []float64, keys []uint16, tab []float64) {
	if len(keys) == 0 {
		return
	}
	// groups has bit g set when a key in g*128 to g*128+127 is present (keys stay below
	// gapTabLen, 48 groups): the scan visits those groups' words of present only. Kept in a
	// register, it costs less than the lowest and highest key did, a compare and a branch.
	var groups uint64
	for _, k := range keys {
		s.count[k]++
		s.present[k>>6] |= 1 << (k & 63)
		groups |= 1 << (k >> 7)
	}
	if cap(xs) < len(keys)+sortSlack {
		s.scan(xs[:len(keys)], groups, tab)
		return
	}
	xs = xs[:len(keys)+sortSlack]
	i := 0
	for groups != 0 {
		g := bits.TrailingZeros64(groups)
		groups &= groups - 1
		for w := 2 * g; w < 2*g+2; w++ {
			word := s.present[w]
			s.present[w] = 0
			for word != 0 {
				k := w<<6 | bits.TrailingZeros64(word)
				word &= word - 1
				v := tab[k]
				c := int(s.count[k])
				s.count[k] = 0
				// i+c is at most len(keys), so the four stores stay inside xs.
				if i+sortSlack-1 < len(xs) {
					dst := xs[i : i+sortSlack : i+sortSlack]
					dst[0], dst[1], dst[2], dst[3] = v, v, v, v
				}
				for j := sortSlack; j < c; j++ {
					xs[i+j] = v
				}
				i += c
			}
		}
	}
}

// sortSlack is how many copies of a key sort writes at once: the room it wants past the end of
// its series.
const sortSlack = 4

// scan is the end of sort for xs without room past its end: the keys' copies one at a time.
func (s *keySorter) scan(xs []float64, groups uint64, tab []float64) {
	i := 0
	for groups != 0 {
		g := bits.TrailingZeros64(groups)
		groups &= groups - 1
		for w := 2 * g; w < 2*g+2; w++ {
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
}

// distribution writes mean, standard deviation and the 10, 25, 50, 75 and 90th percentiles of
// sorted xs into dst[0:7], or NaNs when xs has fewer than two values.
func distribution(dst, xs []float64) {
	mean, sd := math.NaN(), math.NaN()
	if len(xs) >= 2 {
		mean, sd = meanStd(xs)
	}
	describe(dst, xs, mean, sd)
}

// distributions is distribution of the sorted series hold, dd and ud into the summary dst. The
// three series' means and spreads are computed together, each sum adding its series in order as
// meanStd does: a sum waits for its previous addition, and three sums in one loop overlap
// where three loops one after the other would each wait.
func distributions(dst, hold, dd, ud []float64) {
	h := hold[:min(len(hold), len(dd), len(ud))]
	d, u := dd[:len(h)], ud[:len(h)]
	var mh, md, mu float64
	for i := range h {
		mh += h[i]
		md += d[i]
		mu += u[i]
	}
	mh, md, mu = add(mh, hold[len(h):])/float64(len(hold)), add(md, dd[len(h):])/float64(len(dd)), add(mu, ud[len(h):])/float64(len(ud))
	var sh, sd, su float64
	for i := range h {
		sh += (h[i] - mh) * (h[i] - mh)
		sd += (d[i] - md) * (d[i] - md)
		su += (u[i] - mu) * (u[i] - mu)
	}
	sh, sd, su = addSquares(sh, hold[len(h):], mh), addSquares(sd, dd[len(h):], md), addSquares(su, ud[len(h):], mu)
	describe(dst[sumHold:sumHold+7], hold, mh, math.Sqrt(sh/float64(len(hold))))
	describe(dst[sumDD:sumDD+7], dd, md, math.Sqrt(sd/float64(len(dd))))
	describe(dst[sumUD:sumUD+7], ud, mu, math.Sqrt(su/float64(len(ud))))
}

// add continues the sum s with xs, in order.
func add(s float64, xs []float64) float64 {
	for _, x := range xs {
		s += x
	}
	return s
}

// addSquares continues the sum s with the squared distances of xs from mean, in order.
func addSquares(s float64, xs []float64, mean float64) float64 {
	for _, x := range xs {
		s += (x - mean) * (x - mean)
	}
	return s
}

// describe writes mean, sd and the 10, 25, 50, 75 and 90th percentiles of sorted xs into
// dst[0:7], or NaNs when xs has fewer than two values.
func describe(dst, xs []float64, mean, sd float64) {
	if len(xs) < 2 {
		for i := range dst {
			dst[i] = math.NaN()
		}
		return
	}
	dst[0], dst[1] = mean, sd
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

// one is 1 when b holds, else 0, without a branch.
func one(b bool) float64 {
	return float64(b2i(b))
}

// b2i is 1 when b holds, else 0, without a branch.
func b2i(b bool) int {
	var i int
	if b {
		i = 1
	}
	return i
}

func (s stat) mean() float64 {
	if s.n == 0 {
		return math.NaN()
	}
	return s.sum / s.n
}
