package guard_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
)

// The scenario tests drive the guard only through its public API, as an application does, with
// the real behavioural models as scorers (realtyping_test.go) and a real signed audit log.

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

const scenarioPolicy = `
# resource        minimum trust
docs.read         50
profile.edit      70
billing           85
`

// transitions keeps what the guard records.
type transitions struct {
	mu  sync.Mutex
	all []guard.Transition
}

func (r *transitions) RecordDecision(guard.Decision) {}

func (r *transitions) RecordTransition(t guard.Transition) {
	r.mu.Lock()
	r.all = append(r.all, t)
	r.mu.Unlock()
}

func (r *transitions) count(session string, kind guard.TransitionKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.all {
		if t.Session == session && t.Kind == kind {
			n++
		}
	}
	return n
}

type tee struct{ a, b guard.Recorder }

func (t tee) RecordDecision(d guard.Decision)     { t.a.RecordDecision(d); t.b.RecordDecision(d) }
func (t tee) RecordTransition(x guard.Transition) { t.a.RecordTransition(x); t.b.RecordTransition(x) }

// scenario is a guard with a scripted clock, the real models' scorers, a transition recorder and
// a signed audit log in memory.
type scenario struct {
	g       *guard.Guard
	cfg     guard.Config // the defaults New applies
	scorers *behaviour.Source
	rec     *transitions
	queue   *guard.AuditQueue
	log     *audit.Log
	file    *bytes.Buffer
	signer  *audit.MLDSA65Signer
	mu      sync.Mutex
	now     time.Time
}

func newScenario(tb testing.TB) *scenario {
	tb.Helper()
	seed := sha256.Sum256([]byte("vigil guard scenario audit key"))
	signer, err := audit.NewMLDSA65Signer(seed[:])
	if err != nil {
		tb.Fatal(err)
	}
	s := &scenario{cfg: guard.DefaultConfig(), scorers: behaviour.NewSource(), rec: &transitions{},
		queue: guard.NewAuditQueue(1 << 16), file: &bytes.Buffer{}, signer: signer}
	policy, err := guard.ParsePolicy(strings.NewReader(scenarioPolicy))
	if err != nil {
		tb.Fatal(err)
	}
	s.g, err = guard.New(guard.Config{Scorers: s.scorers, Recorder: tee{s.rec, s.queue}, Clock: s.clock}, policy)
	if err != nil {
		tb.Fatal(err)
	}
	if s.log, err = audit.New(s.file, audit.Head{}, audit.Config{Signer: signer, CheckpointEvery: 64}); err != nil {
		tb.Fatal(err)
	}
	return s
}

func (s *scenario) clock() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

func (s *scenario) set(t time.Time) {
	s.mu.Lock()
	s.now = t
	s.mu.Unlock()
}

// enrol gives user the typist's model.
func (s *scenario) enrol(tb testing.TB, user string, ty typist) {
	tb.Helper()
	if err := s.scorers.SetModel(user, ty.model); err != nil {
		tb.Fatal(err)
	}
}

func contextAt(session string, p place, device, network string, t time.Time) guard.ContextEvent {
	return guard.ContextEvent{Session: session, IP: netip.MustParseAddr("198.51.100.7"), Lat: p.lat, Lon: p.lon,
		DeviceFingerprint: device, Network: network, LocalTime: t.In(p.loc)}
}

// history gives user six weeks of working days in Chicago, 9:00 to 17:00 local, on their laptop
// and office network, with behaviour scored consistent elsewhere (ObserveBehaviour): the
// baseline a deployment would have learnt. It returns the end of the last working day.
func (s *scenario) history(tb testing.TB, user string, start time.Time) time.Time {
	tb.Helper()
	day := time.Date(start.Year(), start.Month(), start.Day(), 9, 0, 0, 0, chicago)
	n := 0
	for d := 0; d < 42; d++ {
		day = day.AddDate(0, 0, 1)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			continue
		}
		id := fmt.Sprintf("%s-history-%d", user, d)
		s.set(day)
		if _, err := s.g.OpenSession(id, user, day); err != nil {
			tb.Fatal(err)
		}
		for h := 0; h < 8; h++ {
			t := day.Add(time.Duration(h) * time.Hour)
			s.set(t)
			if _, err := s.g.ObserveContext(contextAt(id, placeChicago, "laptop-"+user, "office-net", t)); err != nil {
				tb.Fatal(err)
			}
			for w := 0; w < 3; w++ {
				n++
				at := t.Add(time.Duration(w+1) * 10 * time.Minute)
				s.set(at)
				if _, err := s.g.ObserveBehaviour(id, at, 0.01+0.02*float64(n%3), nil); err != nil {
					tb.Fatal(err)
				}
			}
		}
		end := day.Add(8 * time.Hour)
		s.set(end)
		if err := s.g.CloseSession(id, end); err != nil {
			tb.Fatal(err)
		}
	}
	return day.Add(8 * time.Hour)
}

// records drains the audit queue, signs the tail, verifies the log and returns its records.
func (s *scenario) records(tb testing.TB) []audit.Record {
	tb.Helper()
	now := s.clock()
	if err := s.queue.Drain(s.log, now); err != nil {
		tb.Fatal(err)
	}
	if err := s.log.Checkpoint(now); err != nil {
		tb.Fatal(err)
	}
	rep, err := audit.Verify(bytes.NewReader(s.file.Bytes()), s.signer.Public())
	if err != nil {
		tb.Fatalf("the audit log does not verify: %v", err)
	}
	if rep.Dropped != 0 {
		tb.Fatalf("the audit queue dropped %d entries", rep.Dropped)
	}
	var out []audit.Record
	for _, line := range bytes.SplitAfter(s.file.Bytes(), []byte("\n")) {
		if len(line) > 0 {
			r, err := audit.DecodeRecord(line)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

// mondayAfter returns the first Monday after t, at hour:00 in loc.
func mondayAfter(t time.Time, hour int, loc *time.Location) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), hour, 0, 0, 0, loc).AddDate(0, 0, 1)
	for d.Weekday() != time.Monday {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

var historyStart = time.Date(2025, 1, 5, 0, 0, 0, 0, chicago)
