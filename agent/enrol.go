package agent

import (
	"cmp"
	"errors"
	"slices"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// enroller builds a user's enrolment incrementally from their sessions' typing, as
// behaviour.KeystrokeEnrolment would from the whole of it: a disjoint window every size
// keystrokes and the summary of an overlapping window every stride keystrokes. It keeps only
// the last window of raw keystrokes, in memory; what it accumulates are feature summaries.
type enroller struct {
	size, stride int
	summaries    bool                   // also the overlapping summaries (enrolment); windows only otherwise
	ring         []guard.KeystrokeEvent // the last size keystrokes, oldest first once full
	since        int                    // keystrokes since the last disjoint window
	sinceSummary int

	ex   keystroke.TimingExtractor
	t    keystroke.Timings
	keys []keystroke.Keystroke
}

func newEnroller(size int, summaries bool) *enroller {
	return &enroller{size: size, stride: max(size/5, 1), summaries: summaries, ring: make([]guard.KeystrokeEvent, 0, size)}
}

// reset forgets the raw keystrokes kept, for example when a session ends: windows never span
// two sessions.
func (e *enroller) reset() {
	e.ring, e.since, e.sinceSummary = e.ring[:0], 0, 0
	clear(e.keys)
}

// push adds a keystroke and adds to enrol what completed with it.
func (e *enroller) push(ev guard.KeystrokeEvent, enrol *models.Enrolment) {
	if len(e.ring) == e.size {
		copy(e.ring, e.ring[1:])
		e.ring = e.ring[:e.size-1]
	}
	e.ring = append(e.ring, ev)
	e.since++
	e.sinceSummary++
	if len(e.ring) < e.size {
		return
	}
	if e.summaries && e.sinceSummary >= e.stride {
		e.sinceSummary = 0
		if e.extract() == nil {
			enrol.Summaries = append(enrol.Summaries, slices.Clone(e.t.Summary))
		}
	}
	if e.since >= e.size {
		e.since = 0
		if err := e.extract(); err == nil {
			enrol.Windows = append(enrol.Windows, models.Window{Dense: slices.Clone(e.t.Summary), Events: unordered(e.t.Events)})
		} else if !errors.Is(err, keystroke.ErrWindowTooSparse) {
			return
		}
	}
}

func (e *enroller) extract() error {
	e.keys = behaviour.AppendKeystrokes(e.keys[:0], e.ring)
	return e.ex.Extract(&e.t, e.keys)
}

// unordered returns a copy of a window's events sorted by bucket and value. The extractor
// emits them in typing order, one key's hold after another, so kept as they come they spell
// out what was typed; every model that fits on them sums over a window's events, which no
// order changes. What a sorted window still tells is which keys and digraphs it held.
func unordered(evs []models.Event) []models.Event {
	evs = slices.Clone(evs)
	slices.SortFunc(evs, func(a, b models.Event) int {
		if c := cmp.Compare(a.Bucket, b.Bucket); c != 0 {
			return c
		}
		return cmp.Compare(a.Value, b.Value)
	})
	return evs
}
