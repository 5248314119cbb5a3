package behaviour

import (
	"time"

	"github.com/vigilauth/vigil/models"
)

// MaxRecentWindows bounds the scored windows a Scorer keeps for feedback: at the guard's default
// hop of 5 keystrokes, about the last 320 keystrokes of the user's sessions, the stretch a
// takeover is caught within. A verdict reaches only the windows still kept.
const MaxRecentWindows = 64

// recent keeps the last scored windows in storage reused slot by slot, so that keeping them
// allocates nothing once every slot has grown to a window's size.
type recent struct {
	ring [MaxRecentWindows]recentWindow
	next int
}

type recentWindow struct {
	session  string
	from, to time.Time // presses of the first and last keystroke
	dense    []float64
	events   []models.Event
	used     bool // the slot holds a window
	done     bool // learnt from, or forgotten
}

func (r *recent) add(session string, from, to time.Time, w models.Window) {
	e := &r.ring[r.next]
	r.next = (r.next + 1) % len(r.ring)
	e.session, e.from, e.to = session, from, to
	e.dense = append(e.dense[:0], w.Dense...)
	e.events = append(e.events[:0], w.Events...)
	e.used, e.done = true, false
}

// learn hands fn, oldest first, disjoint windows of session that lie within [from, to] and were
// neither learnt from nor forgotten, preferring the newest; every kept window of the session in
// that span is then done. It returns how many windows fn accepted.
func (r *recent) learn(session string, from, to time.Time, fn func(models.Window) bool) int {
	var picked [MaxRecentWindows]int
	n := 0
	var bound time.Time // the first press of the last picked window; zero: none picked yet
	for k := 1; k <= len(r.ring); k++ {
		i := (r.next - k + len(r.ring)) % len(r.ring)
		e := &r.ring[i]
		if !e.used || e.done || e.session != session || e.from.Before(from) || e.to.After(to) {
			continue
		}
		if bound.IsZero() || e.to.Before(bound) {
			picked[n] = i
			n++
			bound = e.from
		}
		e.done = true
	}
	learnt := 0
	for k := n - 1; k >= 0; k-- {
		e := &r.ring[picked[k]]
		if fn(models.Window{Dense: e.dense, Events: e.events}) {
			learnt++
		}
	}
	return learnt
}

// forget marks every kept window of session that ends by to as never to be learnt from.
func (r *recent) forget(session string, to time.Time) {
	for i := range r.ring {
		if e := &r.ring[i]; e.used && e.session == session && !e.to.After(to) {
			e.done = true
		}
	}
}
