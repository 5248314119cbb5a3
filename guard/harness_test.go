package guard

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// Places and times of the scenarios.
var (
	chicago, _ = time.LoadLocation("America/Chicago")
	warsaw, _  = time.LoadLocation("Europe/Warsaw")
)

type place struct {
	name     string
	lat, lon float64
	loc      *time.Location
}

var (
	placeChicago = place{"Chicago", 41.8781, -87.6298, chicago}
	placeWarsaw  = place{"Warsaw", 52.2297, 21.0122, warsaw}
)

const testPolicy = `
# resource        minimum trust
docs.read         50
profile.edit      70
billing           85
`

func mustPolicy(tb testing.TB, text string) *Policy {
	tb.Helper()
	p, err := ParsePolicy(strings.NewReader(text))
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// memRecorder keeps what the guard records, for assertions.
type memRecorder struct {
	mu          sync.Mutex
	decisions   []Decision
	transitions []Transition
}

func (r *memRecorder) RecordDecision(d Decision) {
	r.mu.Lock()
	r.decisions = append(r.decisions, d)
	r.mu.Unlock()
}

func (r *memRecorder) RecordTransition(t Transition) {
	r.mu.Lock()
	r.transitions = append(r.transitions, t)
	r.mu.Unlock()
}

func (r *memRecorder) count(session string, kind TransitionKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.transitions {
		if t.Session == session && t.Kind == kind {
			n++
		}
	}
	return n
}

// testClock is a settable clock for replays.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// rig is a guard with a scripted clock, a recorder and per-user scorers.
type rig struct {
	g       *Guard
	clock   *testClock
	rec     *memRecorder
	scorers map[string]BehaviourScorer
}

func newRig(tb testing.TB, cfg Config) *rig {
	tb.Helper()
	r := &rig{clock: &testClock{}, rec: &memRecorder{}, scorers: map[string]BehaviourScorer{}}
	cfg.Clock, cfg.Recorder = r.clock.Now, r.rec
	cfg.Scorers = ScorerSourceFunc(func(user string) (BehaviourScorer, error) {
		return r.scorers[user], nil
	})
	g, err := New(cfg, mustPolicy(tb, testPolicy))
	if err != nil {
		tb.Fatal(err)
	}
	r.g = g
	return r
}

func (r *rig) at(p place, t time.Time) time.Time {
	r.clock.Set(t)
	return t.In(p.loc)
}

// contextAt is a context event at a place on a device and network.
func contextAt(session string, p place, device, network string, t time.Time) ContextEvent {
	return ContextEvent{Session: session, IP: netip.MustParseAddr("198.51.100.7"), Lat: p.lat, Lon: p.lon,
		DeviceFingerprint: device, Network: network, LocalTime: t.In(p.loc)}
}

// history gives user six weeks of working days in Chicago, 9:00 to 17:00 local, on their laptop
// and office network, with consistent behaviour: the baseline a real deployment would have
// learned. It uses only the public API.
func (r *rig) history(tb testing.TB, user string, start time.Time) time.Time {
	tb.Helper()
	day := time.Date(start.Year(), start.Month(), start.Day(), 9, 0, 0, 0, chicago)
	n := 0
	for d := 0; d < 42; d++ {
		day = day.AddDate(0, 0, 1)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		id := fmt.Sprintf("%s-history-%d", user, d)
		r.clock.Set(day)
		if _, err := r.g.OpenSession(id, user, day); err != nil {
			tb.Fatal(err)
		}
		for h := 0; h < 8; h++ {
			t := day.Add(time.Duration(h) * time.Hour)
			r.clock.Set(t)
			if _, err := r.g.ObserveContext(contextAt(id, placeChicago, "laptop-"+user, "office-net", t)); err != nil {
				tb.Fatal(err)
			}
			for w := 0; w < 3; w++ {
				n++
				at := t.Add(time.Duration(w+1) * 10 * time.Minute)
				r.clock.Set(at)
				if _, err := r.g.ObserveBehaviour(id, at, 0.05+0.1*float64(n%3), nil); err != nil {
					tb.Fatal(err)
				}
			}
		}
		end := day.Add(8 * time.Hour)
		r.clock.Set(end)
		if err := r.g.CloseSession(id, end); err != nil {
			tb.Fatal(err)
		}
	}
	return day.Add(8 * time.Hour)
}

// replay feeds keystrokes and returns the statuses after each and the first error.
func (r *rig) replay(evs []KeystrokeEvent) ([]Status, error) {
	out := make([]Status, 0, len(evs))
	for _, ev := range evs {
		r.clock.Set(ev.Release)
		st, err := r.g.ObserveKeystroke(ev)
		if err != nil {
			return out, err
		}
		out = append(out, st)
	}
	return out, nil
}
