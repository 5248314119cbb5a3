package keystroke

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/vigilauth/vigil/models"
)

// TimingFeatureSet names the per-key and per-digraph timings TimingExtractor produces, together
// with the window summary of FeatureSet. Profiles and populations built from one set only make
// sense on events of the same set.
const TimingFeatureSet = "keystroke-digraph-v2"

// Timing buckets. A bucket is one kind of timing for one key class (hold) or one ordered pair
// of key classes (press-to-press and release-to-press of a digraph, hold of a key after and
// before another).
const (
	numHoldBuckets    = NumKeyClasses
	numDigraphBuckets = NumKeyClasses * NumKeyClasses
	ddBase            = numHoldBuckets
	udBase            = ddBase + numDigraphBuckets
	hpBase            = udBase + numDigraphBuckets
	hnBase            = hpBase + numDigraphBuckets
	// NumBuckets is the number of distinct timing buckets.
	NumBuckets = hnBase + numDigraphBuckets
)

// maxDigraphGap is the longest press-to-press interval still taken as the rhythm of a digraph;
// anything longer is a pause (reading, thinking), which says little about the hands.
const maxDigraphGap = 1500 * time.Millisecond

// Event is one timing seen in a window: its bucket and its value on the bucket's scale
// (log-milliseconds for holds and press-to-press intervals, asinh(ms/20) for release-to-press
// gaps, which are negative when keys overlap).
type Event = models.Event

// Timings is what TimingExtractor finds in one window: a summary of the whole window
// (NumSummaryFeatures entries, see SummaryNames) and the individual timing events. Its buffers
// are reused by the next Extract.
type Timings struct {
	Summary []float64
	Events  []Event
}

// TimingExtractor computes Timings. It keeps scratch buffers so that Extract allocates nothing
// once warmed up; it is not safe for concurrent use.
type TimingExtractor struct {
	// Each keystroke's timings.
	tm []keyTimings
	// The summary's series of hold times, intervals and gaps, sorted. Their passes count each
	// timing's entry in logTab (hold, press-to-press) or gapTab (release-to-press) into their
	// sorter as they go, by which the series are sorted when all their timings are table
	// entries (see keySorter); sorter is the hold times'.
	hold, dd, ud               []float64
	sorter, ddSorter, udSorter *keySorter
	// Tables of the transforms at whole milliseconds, which is how most clocks report key
	// events: exact values, looked up instead of computed on the live path.
	logTab, gapTab []float64
	// tabsOrdered records that both tables are non-decreasing, so that sorting keys sorts values.
	tabsOrdered bool
	// classOf is KeyClass of every code it accepts, looked up instead of switched on.
	classOf []uint8
	// roleOf is the roles (see roles) of every code KeyClass accepts, and of none past them.
	roleOf []uint64
}

// Roles of keys in the summary's rates, as fields of a word: a code's entry in roleOf has a 1
// at the bottom of each field of its roles, so that adding the entries of up to 65535 codes
// counts each role in its field. A space's is the lowest bit.
const (
	roleSpace     = 0
	roleShift     = 16
	roleBackspace = 32
	roleCapsLock  = 48
)

// maxKeyCode is the largest code KeyClass accepts.
const maxKeyCode = 1023

// noKey marks a timing that is not a table entry.
const noKey = -1

// Ranges of the lookup tables, in milliseconds. They are as long as each other, a power of two
// (so that a key masked by the length is the same key, and needs no bounds check, see
// keySorter), and cover every timing the passes look up: holds up to 2 s, intervals up to
// 1.5 s and gaps from -2 s to 1.5 s.
const (
	logTabLen = tabLen
	gapTabMin = -2048
	gapTabLen = tabLen
	tabLen    = 4096
)

// lookup returns tab's entry at u nanoseconds from the table's start, and its key, when u is a
// whole number of milliseconds inside the table; otherwise key is noKey, v is unspecified and
// the caller computes the value. A duration before the table's start wraps to beyond its end.
// Below 2^32, which the table's range is, u*msMagic>>msShift is u/1e6 exactly (see
// TestLookupDivides): one multiplication by a constant, where Go makes the division a 128-bit
// one, whose fixed registers made the passes' loops keep their values in memory. It has no
// branch, which also kept values in memory, and is small enough to be inlined, which a
// function also holding the computation is not.
func lookup(tab *[tabLen]float64, u uint64) (v float64, key int) {
	i := u * msMagic >> msShift
	key = int(i)
	if i*uint64(time.Millisecond) != u || u >= tabLen*uint64(time.Millisecond) {
		key = noKey
	}
	return tab[i&(tabLen-1)], key
}

// msMagic is 2^msShift/1e6 rounded up, by which lookup divides by a millisecond.
const (
	msMagic = 1<<msShift/uint64(time.Millisecond) + 1
	msShift = 50
)

// gapMs is asinh(d in ms / 20): a signed, log-like scale for release-to-press gaps, which are
// negative when keys overlap.
func gapMs(d time.Duration) float64 {
	return math.Asinh(float64(d) / float64(20*time.Millisecond))
}

func (e *TimingExtractor) init() {
	if e.logTab != nil {
		return
	}
	e.logTab, e.gapTab = make([]float64, logTabLen), make([]float64, gapTabLen)
	for i := range e.logTab {
		e.logTab[i] = logMs(time.Duration(i) * time.Millisecond)
	}
	for i := range e.gapTab {
		e.gapTab[i] = gapMs(time.Duration(i+gapTabMin) * time.Millisecond)
	}
	e.tabsOrdered = slices.IsSorted(e.logTab) && slices.IsSorted(e.gapTab)
	e.classOf = make([]uint8, maxKeyCode+1)
	for code := range e.classOf {
		c, _ := KeyClass(code)
		e.classOf[code] = uint8(c)
	}
	e.roleOf = make([]uint64, maxKeyCode+2)
	e.roleOf[CodeSpace] = 1 << roleSpace
	e.roleOf[CodeShift] = 1 << roleShift
	e.roleOf[CodeBackspace] = 1 << roleBackspace
	e.roleOf[20] = 1 << roleCapsLock
	sorters := new([3]keySorter)
	e.sorter, e.ddSorter, e.udSorter = &sorters[0], &sorters[1], &sorters[2]
}

// Extract fills t from window. Keys of unknown class, implausible holds (missing or reversed
// releases, stuck keys), non-increasing press times and pauses are skipped; a window with too
// few usable timings is an ErrWindowTooSparse.
func (e *TimingExtractor) Extract(t *Timings, window []Keystroke) error {
	if cap(t.Summary) < NumSummaryFeatures {
		t.Summary = make([]float64, NumSummaryFeatures)
	}
	t.Summary = t.Summary[:NumSummaryFeatures]
	t.Events = e.summarise(t.Summary, t.Events[:0], window)
	if len(e.hold) < minWindow || len(e.dd) < minWindow {
		return fmt.Errorf("%w: %d hold times and %d intervals, want at least %d each", ErrWindowTooSparse, len(e.hold), len(e.dd), minWindow)
	}
	return nil
}
