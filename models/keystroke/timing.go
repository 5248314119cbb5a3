package keystroke

import (
	"fmt"
	"math"
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
	// Per keystroke i of the window: log hold time, log press-to-press interval from key i-1,
	// and asinh(release-to-press gap / 20 ms) from key i-1; NaN where there is none. Each is
	// computed once and shared by the summary and the events.
	logHold, logDD, gapUD []float64
	// Sorting buffers of the summary.
	hold, dd, ud []float64
	// Tables of the transforms at whole milliseconds, which is how most clocks report key
	// events: exact values, looked up instead of computed on the live path.
	logTab, gapTab []float64
}

// Ranges of the lookup tables, in milliseconds.
const (
	logTabLen = 4096
	gapTabMin = -2048
	gapTabLen = 6144
)

// logMs is log(max(ms, 1)) of d in milliseconds.
func (e *TimingExtractor) logMs(d time.Duration) float64 {
	if d%time.Millisecond == 0 && d >= 0 && d < logTabLen*time.Millisecond {
		return e.logTab[d/time.Millisecond]
	}
	return logMs(d)
}

// gap is asinh(d in ms / 20): a signed, log-like scale for release-to-press gaps, which are
// negative when keys overlap.
func (e *TimingExtractor) gap(d time.Duration) float64 {
	if d%time.Millisecond == 0 {
		if i := int(d/time.Millisecond) - gapTabMin; i >= 0 && i < gapTabLen {
			return e.gapTab[i]
		}
	}
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
		e.gapTab[i] = math.Asinh(float64(time.Duration(i+gapTabMin)*time.Millisecond) / float64(20*time.Millisecond))
	}
}

// Extract fills t from window. Keys of unknown class, implausible holds (missing or reversed
// releases, stuck keys), non-increasing press times and pauses are skipped; a window with too
// few usable timings is an ErrWindowTooSparse.
func (e *TimingExtractor) Extract(t *Timings, window []Keystroke) error {
	if cap(t.Summary) < NumSummaryFeatures {
		t.Summary = make([]float64, NumSummaryFeatures)
	}
	t.Summary = t.Summary[:NumSummaryFeatures]
	e.timings(window)
	e.summarise(t.Summary, window)
	if len(e.hold) < minWindow || len(e.dd) < minWindow {
		return fmt.Errorf("%w: %d hold times and %d intervals, want at least %d each", ErrWindowTooSparse, len(e.hold), len(e.dd), minWindow)
	}
	t.Events = t.Events[:0]
	prevClass := -1
	for i, k := range window {
		c, ok := KeyClass(k.Code)
		if !ok {
			prevClass = -1
			continue
		}
		h := e.logHold[i]
		if h == h {
			t.Events = append(t.Events, Event{Bucket: c, Value: h})
		}
		if prevClass >= 0 {
			pair := prevClass*NumKeyClasses + c
			if dd := e.logDD[i]; dd == dd {
				t.Events = append(t.Events, Event{Bucket: ddBase + pair, Value: dd})
			}
			if ud := e.gapUD[i]; ud == ud {
				t.Events = append(t.Events, Event{Bucket: udBase + pair, Value: ud})
			}
			if h == h {
				t.Events = append(t.Events, Event{Bucket: hpBase + pair, Value: h})
			}
			if ph := e.logHold[i-1]; ph == ph {
				t.Events = append(t.Events, Event{Bucket: hnBase + pair, Value: ph})
			}
		}
		prevClass = c
	}
	return nil
}

// timings computes the per-keystroke timings of window into e's buffers.
func (e *TimingExtractor) timings(window []Keystroke) {
	e.init()
	n := len(window)
	if cap(e.logHold) < n {
		e.logHold, e.logDD, e.gapUD = make([]float64, n), make([]float64, n), make([]float64, n)
	}
	e.logHold, e.logDD, e.gapUD = e.logHold[:n], e.logDD[:n], e.gapUD[:n]
	nan := math.NaN()
	for i, k := range window {
		e.logHold[i], e.logDD[i], e.gapUD[i] = nan, nan, nan
		if h, ok := k.Hold(); ok {
			e.logHold[i] = e.logMs(h)
		}
		if i == 0 {
			continue
		}
		prev := window[i-1]
		dd := k.Press - prev.Press
		if dd <= 0 || dd > maxDigraphGap {
			continue
		}
		e.logDD[i] = e.logMs(dd)
		if _, ok := prev.Hold(); ok {
			e.gapUD[i] = e.gap(k.Press - prev.Release)
		}
	}
}
