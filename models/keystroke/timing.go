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
	// Sorting buffers of the summary; with each timing, its entry in logTab (hold,
	// press-to-press) or gapTab (release-to-press), or noKey where the value was computed, by
	// which the series are sorted when all their timings are table entries (see keySorter).
	hold, dd, ud    []float64
	holdK, ddK, udK []uint16
	sorter          *keySorter
	// Tables of the transforms at whole milliseconds, which is how most clocks report key
	// events: exact values, looked up instead of computed on the live path.
	logTab, gapTab []float64
	// tabsOrdered records that both tables are non-decreasing, so that sorting keys sorts values.
	tabsOrdered bool
	// classOf is KeyClass of every code it accepts, looked up instead of switched on.
	classOf []uint8
}

// maxKeyCode is the largest code KeyClass accepts.
const maxKeyCode = 1023

// noKey marks a timing that is not a table entry.
const noKey = -1

// Ranges of the lookup tables, in milliseconds.
const (
	logTabLen = 4096
	gapTabMin = -2048
	gapTabLen = 6144
)

// lookup returns tab's entry at u nanoseconds from the table's start, and its key, when u is a
// whole number of milliseconds inside the table; otherwise key is noKey and the caller computes
// the value. One unsigned division by a constant (a multiplication) finds the milliseconds and
// tells whether u is whole; a duration before the table's start wraps to beyond its end. It is
// small enough to be inlined, which a function also holding the computation is not.
func lookup(tab []float64, u uint64) (v float64, key int16) {
	if i := u / uint64(time.Millisecond); i*uint64(time.Millisecond) == u && i < uint64(len(tab)) {
		return tab[i], int16(i)
	}
	return 0, noKey
}

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
	e.sorter = new(keySorter)
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
