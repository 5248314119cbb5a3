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
		// Room past the series' ends for keySorter.emit's copies.
		e.hold, e.dd, e.ud = make([]float64, n+sortSlack), make([]float64, n+sortSlack), make([]float64, n+sortSlack)
	}
	tm := e.tm[:n]
	holdWords, holdKeyed := e.holds(tm, window)
	ddWords, ddKeyed, pairs, pauses := e.intervals(tm, window)
	udWords, udKeyed := e.gaps(tm, window)
	hold, dd, ud := e.hold, e.dd, e.ud
	sortSeries(hold, e.sorter, holdWords, holdKeyed, e.logTab)
	sortSeries(dd, e.ddSorter, ddWords, ddKeyed, e.logTab)
	sortSeries(ud, e.udSorter, udWords, udKeyed, e.gapTab)
	distributions(dst, hold, dd, ud)
	rates(dst, window, tm, len(ud), pairs, pauses, (*[maxKeyCode + 2]uint64)(e.roleOf))
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
func rates(dst []float64, window []Keystroke, tm []keyTimings, gaps, pairs, pauses int, roleOf *[maxKeyCode + 2]uint64) {
	tm = tm[:len(window)]
	// Spaces and shifts come at no predictable place. Each chunk of 64 keystrokes is scanned
	// for them into bit masks without a branch, and only the keystrokes found are visited, in
	// order: each sum adds the same values in the same order as a loop over every keystroke
	// would. The running means are plain locals rather than stats, which would live in memory
	// and make every addition wait for the one before it to be stored.
	var (
		backspace, shift, caps                   int
		shiftHold, shiftN, spaceHold, spaceN     float64
		beforeSpace, beforeN, afterSpace, afterN float64
	)
	for base := 0; base < len(window); base += 64 {
		spaces, shifts, counts := findRoles(window[base:min(base+64, len(window))], roleOf)
		backspace += int(counts >> roleBackspace & 0xffff)
		caps += int(counts >> roleCapsLock & 0xffff)
		shift += int(counts >> roleShift & 0xffff)
		for ; shifts != 0; shifts &= shifts - 1 {
			if v := tm[base+bits.TrailingZeros64(shifts)].hold; v == v {
				shiftHold += v
				shiftN++
			}
		}
		for ; spaces != 0; spaces &= spaces - 1 {
			i := base + bits.TrailingZeros64(spaces)
			if v := tm[i].hold; v == v {
				spaceHold += v
				spaceN++
			}
			if v := tm[i].dd; v == v {
				beforeSpace += v
				beforeN++
			}
			if i+1 < len(tm) {
				if v := tm[i+1].dd; v == v {
					afterSpace += v
					afterN++
				}
			}
		}
	}
	ov := countOverlaps(window, tm)
	nf := float64(len(window))
	dst[sumOverlap] = ratio(float64(ov.overlaps), float64(gaps))
	dst[sumInversion] = ratio(float64(ov.inversions), float64(ov.releasePairs))
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
// plausible), counts the series of hold times into e.sorter and makes e.hold as long as it. It
// returns the sorter's words (see keySorter.put) and whether the series is keyed (see settle).
//
// This and the other passes look every timing up in its table and compute the few that are not
// table entries in a second loop: a call in the first would make it keep its values on the
// stack.
func (e *TimingExtractor) holds(tm []keyTimings, window []Keystroke) (words uint64, keyed bool) {
	tm = tm[:len(window)]
	n, missed, words := lookupHolds(tm, window, (*[tabLen]float64)(e.logTab), e.sorter)
	if missed < 0 {
		for i := range window {
			if h, held := window[i].Hold(); held {
				if _, key := lookup((*[tabLen]float64)(e.logTab), uint64(h)); key == noKey {
					tm[i].hold = logMs(h)
				}
			}
		}
	}
	e.hold = e.hold[:n]
	return words, e.settle(e.sorter, words, missed, e.hold, tm, func(t *keyTimings) float64 { return t.hold })
}

// lookupHolds is the first loop of holds. It returns the number of hold times, missed
// (negative when a hold time is not a table entry) and the sorter's words. The passes' loops
// are functions of their own: in one with the code around them, the compiler kept their
// values in memory.
//
//go:noinline
func lookupHolds(tm []keyTimings, window []Keystroke, logTab *[tabLen]float64, s *keySorter) (n, missed int, words uint64) {
	tm = tm[:len(window)]
	for i := range window {
		h, held := window[i].Hold()
		if !held {
			tm[i].hold = math.NaN()
			continue
		}
		v, key := lookup(logTab, uint64(h))
		tm[i].hold = v
		words |= s.put(key)
		n++
		missed |= key
	}
	return n, missed, words
}

// intervals sets each keystroke's log press-to-press interval from the key before in tm (NaN
// for the first keystroke, a press time that does not increase and a pause), counts the
// series of intervals into e.ddSorter and makes e.dd as long as it. It returns the sorter's
// words, whether the series is keyed, the number of pairs of keystrokes with increasing press
// times and how many of those were pauses.
func (e *TimingExtractor) intervals(tm []keyTimings, window []Keystroke) (words uint64, keyed bool, pairs, pauses int) {
	tm = tm[:len(window)]
	n, missed, words, pairs, pauses := lookupIntervals(tm, window, (*[tabLen]float64)(e.logTab), e.ddSorter)
	if missed < 0 {
		for i := 1; i < len(window); i++ {
			if d := window[i].Press - window[i-1].Press; tm[i].dd == tm[i].dd {
				if _, key := lookup((*[tabLen]float64)(e.logTab), uint64(d)); key == noKey {
					tm[i].dd = logMs(d)
				}
			}
		}
	}
	e.dd = e.dd[:n]
	return words, e.settle(e.ddSorter, words, missed, e.dd, tm, func(t *keyTimings) float64 { return t.dd }), pairs, pauses
}

// lookupIntervals is the first loop of intervals, which returns what lookupHolds does and the
// pairs and pauses.
//
//go:noinline
func lookupIntervals(tm []keyTimings, window []Keystroke, logTab *[tabLen]float64, s *keySorter) (n, missed int, words uint64, pairs, pauses int) {
	tm = tm[:len(window)]
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
		words |= s.put(key)
		n++
		missed |= key
	}
	return n, missed, words, pairs, pauses
}

// gaps sets each keystroke's release-to-press gap from the key before in tm, where the
// interval is a digraph and the key before was held, NaN elsewhere, counts the series of gaps
// into e.udSorter and makes e.ud as long as it. It returns the sorter's words and whether the
// series is keyed.
func (e *TimingExtractor) gaps(tm []keyTimings, window []Keystroke) (words uint64, keyed bool) {
	tm = tm[:len(window)]
	n, missed, words := lookupGaps(tm, window, (*[tabLen]float64)(e.gapTab), e.udSorter)
	if missed < 0 {
		for i := 1; i < len(window); i++ {
			if g := window[i].Press - window[i-1].Release; tm[i].ud == tm[i].ud {
				if _, key := lookup((*[tabLen]float64)(e.gapTab), uint64(g-gapTabMin*time.Millisecond)); key == noKey {
					tm[i].ud = gapMs(g)
				}
			}
		}
	}
	e.ud = e.ud[:n]
	return words, e.settle(e.udSorter, words, missed, e.ud, tm, func(t *keyTimings) float64 { return t.ud })
}

// lookupGaps is the first loop of gaps, which returns what lookupHolds does.
//
//go:noinline
func lookupGaps(tm []keyTimings, window []Keystroke, gapTab *[tabLen]float64, s *keySorter) (n, missed int, words uint64) {
	tm = tm[:len(window)]
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
		words |= s.put(key)
		n++
		missed |= key
	}
	return n, missed, words
}

// settle reports whether the series xs of timings, counted into s with words, is keyed: every
// timing a table entry (missed is not negative), few enough for the counts, and the tables in
// order, so that s sorts it. When it is not, settle clears s and writes the series' values,
// the timing of each keystroke's timings tm that is not NaN, in order, into xs.
func (e *TimingExtractor) settle(s *keySorter, words uint64, missed int, xs []float64, tm []keyTimings, timing func(*keyTimings) float64) bool {
	if missed >= 0 && len(xs) <= maxKeyedSort && e.tabsOrdered {
		return true
	}
	s.clear(words)
	j := 0
	for i := range tm {
		if v := timing(&tm[i]); v == v {
			xs[j] = v
			j++
		}
	}
	return false
}

// findRoles returns the keystrokes of chunk (at most 64) that are spaces and shifts, as bit
// masks, and the counts of each role in its field (see roles). It is apart from rates, which
// has too many values live for this loop to keep its own in registers.
//
//go:noinline
func findRoles(chunk []Keystroke, roleOf *[maxKeyCode + 2]uint64) (spaces, shifts, counts uint64) {
	for i := range chunk {
		f := roleOf[min(uint(chunk[i].Code), maxKeyCode+1)]
		counts += f
		spaces |= f >> roleSpace & 1 << (i & 63)
		shifts |= f >> roleShift & 1 << (i & 63)
	}
	return spaces, shifts, counts
}

// overlaps counts a window's overlapping digraphs (a negative release-to-press gap), those
// whose second key was held too, and of those, the ones released in the reverse order.
type overlaps struct {
	overlaps, releasePairs, inversions int
}

// countOverlaps counts the overlaps of window from its keystrokes' timings tm. Whether keys
// overlap is as good as random, and && branched on it: every test is made and the results are
// combined as bits.
//
//go:noinline
func countOverlaps(window []Keystroke, tm []keyTimings) (ov overlaps) {
	tm = tm[:len(window)]
	for i := 1; i < len(window); i++ {
		overlap := b2i(tm[i].ud < 0)
		held := overlap & b2i(tm[i].hold == tm[i].hold)
		ov.overlaps += overlap
		ov.releasePairs += held
		ov.inversions += held & b2i(window[i].Release < window[i-1].Release)
	}
	return ov
}

// events appends the window's timing events: the hold of each key of known class, and with
// the key before when that was of known class too, the digraph's timings and both holds in its
// context.
func (e *TimingExtractor) events(events []Event, window []Keystroke, tm []keyTimings) []Event {
	start := len(events)
	events = slices.Grow(events, 5*len(window))
	n := writeEvents(events[start:start+5*len(window)], window, tm, (*[maxKeyCode + 1]uint8)(e.classOf))
	return events[:start+n]
}

// writeEvents writes the events of window, whose keystrokes' timings are tm, into out and
// returns how many. It is apart from events, whose growing of the slice kept this loop's
// values in memory.
//
//go:noinline
func writeEvents(out []Event, window []Keystroke, tm []keyTimings, classOf *[maxKeyCode + 1]uint8) int {
	tm = tm[:len(window)]
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
	return ne
}

// sortSeries sorts the series xs: by s, into which it was counted with words, when keyed, and
// otherwise as floats.
func sortSeries(xs []float64, s *keySorter, words uint64, keyed bool, tab []float64) {
	if keyed {
		s.emit(xs, words, (*[tabLen]float64)(tab))
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
	present [tabLen / 64]uint64
	count   [tabLen]uint8
}

// sort writes tab[keys[i]] into xs (as long as keys, at most maxKeyedSort) in ascending order.
// Keys must index tab, which has tabLen entries and must be non-decreasing. When xs has room
// for sortSlack more values past len(keys), which it leaves unspecified, each key's copies are
// written sortSlack at a time without a branch on their count (mostly 1 to 3).
func (s *keySorter) sort(xs []float64, keys []uint16, tab []float64) {
	var words uint64
	for _, k := range keys {
		words |= s.put(int(k))
	}
	s.emit(xs[:len(keys)], words, (*[tabLen]float64)(tab))
}

// put counts key, a table index (or noKey, which it counts as the last index), and returns the
// bit of its word of present, so that emit visits the words with a key only. Keys are masked by
// the table's length here and in emit, which changes none of them but spares their bounds
// checks.
func (s *keySorter) put(key int) uint64 {
	k := key & (tabLen - 1)
	s.count[k]++
	s.present[k>>6] |= 1 << (k & 63)
	return 1 << (k >> 6)
}

// clear leaves s as it was before keys with words were put.
func (s *keySorter) clear(words uint64) {
	for ; words != 0; words &= words - 1 {
		w := bits.TrailingZeros64(words) & (len(s.present) - 1)
		s.present[w] = 0
		clear(s.count[w*64 : w*64+64])
	}
}

// emit writes the values in tab of the keys put, with words, into xs (as long as their count)
// in ascending order, and leaves s as it was before they were put.
func (s *keySorter) emit(xs []float64, words uint64, t *[tabLen]float64) {
	if len(xs) == 0 {
		return
	}
	if cap(xs) < len(xs)+sortSlack {
		s.scan(xs, words, t)
		return
	}
	xs = xs[:len(xs)+sortSlack]
	i := 0
	for ; words != 0; words &= words - 1 {
		w := bits.TrailingZeros64(words) & (len(s.present) - 1)
		word := s.present[w]
		s.present[w] = 0
		for ; word != 0; word &= word - 1 {
			k := (w<<6 | bits.TrailingZeros64(word)) & (tabLen - 1)
			v := t[k]
			c := int(s.count[k])
			s.count[k] = 0
			// i+c is at most the number of keys, so the four stores stay inside xs.
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

// sortSlack is how many copies of a key sort writes at once: the room it wants past the end of
// its series.
const sortSlack = 4

// scan is emit for xs without room past its end: the keys' copies one at a time.
func (s *keySorter) scan(xs []float64, words uint64, t *[tabLen]float64) {
	i := 0
	for ; words != 0; words &= words - 1 {
		w := bits.TrailingZeros64(words) & (len(s.present) - 1)
		word := s.present[w]
		s.present[w] = 0
		for ; word != 0; word &= word - 1 {
			k := (w<<6 | bits.TrailingZeros64(word)) & (tabLen - 1)
			v := t[k]
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
