package guard

import (
	"errors"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var tEvent = time.Date(2025, 2, 24, 10, 0, 0, 0, time.UTC)

func goodKey() KeystrokeEvent {
	return KeystrokeEvent{Session: "s", Press: tEvent, Release: tEvent.Add(90 * time.Millisecond), Key: 'A'}
}

func goodMouse() MouseEvent {
	return MouseEvent{Session: "s", At: tEvent, X: 100, Y: 200, Button: ButtonNone, Action: ActionMove}
}

func goodContext() ContextEvent {
	return contextAt("s", placeChicago, "laptop", "office", tEvent)
}

func TestEventValidation(t *testing.T) {
	cases := []struct {
		name string
		ev   interface{ validate() error }
		want error
		msg  string
	}{
		{"keystroke ok", ptr(goodKey()), nil, ""},
		{"keystroke without session", ptr(with(goodKey(), func(e *KeystrokeEvent) { e.Session = "" })), ErrInvalidEvent, "missing session"},
		{"keystroke with a huge session ID", ptr(with(goodKey(), func(e *KeystrokeEvent) { e.Session = strings.Repeat("x", 200) })), ErrInvalidEvent, "limit 128"},
		{"keystroke without press time", ptr(with(goodKey(), func(e *KeystrokeEvent) { e.Press = time.Time{} })), ErrInvalidEvent, "missing press time"},
		{"keystroke in 1970", ptr(with(goodKey(), func(e *KeystrokeEvent) { e.Press, e.Release = time.Unix(5, 0), time.Unix(5, 0) })), ErrBadTime, "outside 2000..2200"},
		{"release before press", ptr(with(goodKey(), func(e *KeystrokeEvent) { e.Release = e.Press.Add(-time.Millisecond) })), ErrBadTime, "held for -1ms"},
		{"key held two minutes", ptr(with(goodKey(), func(e *KeystrokeEvent) { e.Release = e.Press.Add(2 * time.Minute) })), ErrBadTime, "held for 2m0s"},
		{"keystroke without key", ptr(with(goodKey(), func(e *KeystrokeEvent) { e.Key = 0 })), ErrInvalidEvent, "missing key code"},
		{"mouse ok", ptr(goodMouse()), nil, ""},
		{"mouse off any screen", ptr(with(goodMouse(), func(e *MouseEvent) { e.X = 1 << 30 })), ErrInvalidEvent, "beyond"},
		{"mouse without button", ptr(with(goodMouse(), func(e *MouseEvent) { e.Button = 0 })), ErrInvalidEvent, "unknown button"},
		{"mouse with unknown action", ptr(with(goodMouse(), func(e *MouseEvent) { e.Action = 99 })), ErrInvalidEvent, "unknown action"},
		{"context ok", ptr(goodContext()), nil, ""},
		{"context without IP", ptr(with(goodContext(), func(e *ContextEvent) { e.IP = netip.Addr{} })), ErrInvalidEvent, "missing IP"},
		{"context from 0.0.0.0", ptr(with(goodContext(), func(e *ContextEvent) { e.IP = netip.IPv4Unspecified() })), ErrInvalidEvent, "missing IP"},
		{"latitude 95", ptr(with(goodContext(), func(e *ContextEvent) { e.Lat = 95 })), ErrInvalidEvent, "latitude [-90, 90]"},
		{"longitude -181", ptr(with(goodContext(), func(e *ContextEvent) { e.Lon = -181 })), ErrInvalidEvent, "longitude"},
		{"latitude NaN", ptr(with(goodContext(), func(e *ContextEvent) { e.Lat = math.NaN() })), ErrInvalidEvent, "NaN"},
		{"Null Island", ptr(with(goodContext(), func(e *ContextEvent) { e.Lat, e.Lon = 0, 0 })), ErrInvalidEvent, "(0, 0)"},
		{"negative accuracy", ptr(with(goodContext(), func(e *ContextEvent) { e.AccuracyKm = -1 })), ErrInvalidEvent, "accuracy"},
		{"no device", ptr(with(goodContext(), func(e *ContextEvent) { e.DeviceFingerprint = "" })), ErrInvalidEvent, "device fingerprint"},
		{"huge network", ptr(with(goodContext(), func(e *ContextEvent) { e.Network = strings.Repeat("n", 300) })), ErrInvalidEvent, "network must be"},
		{"no local time", ptr(with(goodContext(), func(e *ContextEvent) { e.LocalTime = time.Time{} })), ErrInvalidEvent, "missing local time"},
		{"year 2500", ptr(with(goodContext(), func(e *ContextEvent) { e.LocalTime = time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC) })), ErrBadTime, "2500"},
	}
	for _, c := range cases {
		err := c.ev.validate()
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.msg)) {
			t.Errorf("%s: %v, want %v mentioning %q", c.name, err, c.want, c.msg)
		}
	}
}

func ptr[T any](v T) *T             { return &v }
func with[T any](v T, f func(*T)) T { f(&v); return v }

// must fails the test on an error: must(t)(g.OpenSession(...)).
func must(t *testing.T) func(Status, error) Status {
	return func(st Status, err error) Status {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}

func TestSessionErrors(t *testing.T) {
	r := newRig(t, Config{})
	g := r.g
	r.clock.Set(tEvent)
	must(t)(g.OpenSession("s", "alice", tEvent))

	if _, err := g.OpenSession("s", "alice", tEvent); !errors.Is(err, ErrSessionExists) {
		t.Errorf("second open: %v", err)
	}
	if _, err := g.OpenSession("t", "", tEvent); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("open without user: %v", err)
	}
	if _, err := g.OpenSession("t", "bob", tEvent.Add(time.Hour)); !errors.Is(err, ErrBadTime) {
		t.Errorf("open an hour in the future: %v", err)
	}
	ev := goodKey()
	ev.Session = "nobody"
	if _, err := g.ObserveKeystroke(ev); !errors.Is(err, ErrUnknownSession) {
		t.Errorf("unknown session: %v", err)
	}
	if _, err := g.Status("nobody"); !errors.Is(err, ErrUnknownSession) {
		t.Errorf("status of unknown session: %v", err)
	}

	// Order: a keystroke older than the newest event (beyond the tolerance) is refused, one
	// within the tolerance is accepted.
	k := goodKey()
	k.Press, k.Release = tEvent.Add(10*time.Second), tEvent.Add(10*time.Second+80*time.Millisecond)
	r.clock.Set(k.Release)
	must(t)(g.ObserveKeystroke(k))
	late := k
	late.Press, late.Release = k.Press.Add(-time.Second), k.Press.Add(-time.Second+50*time.Millisecond)
	if _, err := g.ObserveKeystroke(late); !errors.Is(err, ErrOutOfOrder) || !strings.Contains(err.Error(), "1s older") {
		t.Errorf("keystroke a second late: %v", err)
	}
	jitter := k
	jitter.Press, jitter.Release = k.Press.Add(-50*time.Millisecond), k.Press.Add(time.Millisecond)
	if _, err := g.ObserveKeystroke(jitter); err != nil {
		t.Errorf("keystroke within the reorder tolerance: %v", err)
	}
	before := goodContext()
	before.LocalTime = tEvent.Add(-time.Minute)
	if _, err := g.ObserveContext(before); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("context before the newest event: %v", err)
	}
	future := goodKey()
	future.Press, future.Release = tEvent.Add(time.Hour), tEvent.Add(time.Hour+time.Millisecond)
	if _, err := g.ObserveKeystroke(future); !errors.Is(err, ErrBadTime) || !strings.Contains(err.Error(), "in the future") {
		t.Errorf("keystroke an hour ahead of the clock: %v", err)
	}

	// Already-scored behaviour is checked too.
	for _, a := range []float64{-0.1, 1.5, math.NaN()} {
		if _, err := g.ObserveBehaviour("s", tEvent.Add(11*time.Second), a, nil); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("anomaly %v: %v", a, err)
		}
	}
	if _, err := g.ObserveBehaviour("s", tEvent.Add(11*time.Second), 0.9, []Deviation{{Feature: "", Z: 1}}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("deviation without a feature: %v", err)
	}
	if _, err := g.ObserveBehaviour("s", tEvent.Add(11*time.Second), 0.9, []Deviation{{Feature: "hold", Z: math.Inf(1)}}); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("infinite deviation: %v", err)
	}

	if _, err := g.Feedback("s", VerdictGenuine, tEvent.Add(time.Hour)); !errors.Is(err, ErrBadTime) {
		t.Errorf("feedback an hour ahead of the clock: %v", err)
	}
	if _, err := g.Feedback("s", Verdict(9), tEvent); !errors.Is(err, ErrInvalidEvent) {
		t.Errorf("unknown verdict: %v", err)
	}

	// A revoked session takes no more events, and stays revoked.
	must(t)(g.Feedback("s", VerdictCompromised, tEvent.Add(12*time.Second)))
	k.Press, k.Release = tEvent.Add(13*time.Second), tEvent.Add(13*time.Second+time.Millisecond)
	if _, err := g.ObserveKeystroke(k); !errors.Is(err, ErrRevoked) {
		t.Errorf("keystroke in a revoked session: %v", err)
	}
	st := must(t)(g.Feedback("s", VerdictGenuine, tEvent.Add(14*time.Second)))
	if !st.Revoked {
		t.Error("an analyst's 'genuine' un-revoked a session")
	}
	if err := g.CloseSession("s", tEvent.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := g.CloseSession("s", tEvent.Add(time.Minute)); !errors.Is(err, ErrUnknownSession) {
		t.Errorf("second close: %v", err)
	}
}

// scriptedScorer returns the scores it is given, in turn, and keeps the feedback.
type scriptedScorer struct {
	scores   []BehaviourScore
	errs     []error
	windows  [][]KeystrokeEvent
	feedback []Feedback
}

func (s *scriptedScorer) ScoreKeystrokes(w []KeystrokeEvent) (BehaviourScore, error) {
	s.windows = append(s.windows, append([]KeystrokeEvent(nil), w...))
	i := len(s.windows) - 1
	var err error
	if i < len(s.errs) {
		err = s.errs[i]
	}
	if i < len(s.scores) {
		return s.scores[i], err
	}
	return BehaviourScore{Anomaly: 0.1}, err
}

func (s *scriptedScorer) ScoreMouse([]MouseEvent) (BehaviourScore, error) {
	return BehaviourScore{}, ErrNotScored
}
func (s *scriptedScorer) Feedback(f Feedback) { s.feedback = append(s.feedback, f) }

func TestScorerWindowsAndErrors(t *testing.T) {
	sc := &scriptedScorer{
		scores: []BehaviourScore{{Anomaly: 0.1}, {Anomaly: math.NaN()}, {Anomaly: 0.1}, {Anomaly: 0.1}},
		errs:   []error{nil, nil, ErrNotScored, errors.New("model file corrupt")},
	}
	r := newRig(t, Config{KeystrokeWindow: 4, KeystrokeHop: 2})
	r.scorers["alice"] = sc
	r.clock.Set(tEvent.Add(time.Hour))
	must(t)(r.g.OpenSession("s", "alice", tEvent))
	var errs []error
	for i := 0; i < 10; i++ {
		k := goodKey()
		k.Key = uint16('A' + i)
		k.Press = tEvent.Add(time.Duration(i) * 200 * time.Millisecond)
		k.Release = k.Press.Add(80 * time.Millisecond)
		_, err := r.g.ObserveKeystroke(k)
		errs = append(errs, err)
	}
	// Windows complete at keystrokes 4, 6, 8 and 10 (index 3, 5, 7, 9), oldest first.
	if len(sc.windows) != 4 || sc.windows[0][0].Key != 'A' || sc.windows[1][0].Key != 'C' || sc.windows[3][3].Key != 'J' {
		t.Fatalf("windows %v", sc.windows)
	}
	for i, err := range errs {
		switch i {
		case 5:
			if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), "bad score") {
				t.Errorf("NaN anomaly from the scorer: %v", err)
			}
		case 9:
			if err == nil || !strings.Contains(err.Error(), "model file corrupt") || !strings.Contains(err.Error(), "alice") {
				t.Errorf("scorer failure: %v", err)
			}
		default:
			if err != nil {
				t.Errorf("keystroke %d: %v (ErrNotScored must be no evidence, not an error)", i, err)
			}
		}
	}
}

// mouseScorer scores every mouse window as foreign.
type mouseScorer struct{ scriptedScorer }

func (m *mouseScorer) ScoreMouse(w []MouseEvent) (BehaviourScore, error) {
	return BehaviourScore{Anomaly: 1, Deviations: []Deviation{{Feature: "curvature of movements", Z: 3.5}}}, nil
}

func TestMouseWindowsAreScored(t *testing.T) {
	r := newRig(t, Config{MouseWindow: 8, MouseHop: 8})
	r.scorers["alice"] = &mouseScorer{}
	r.clock.Set(tEvent.Add(time.Hour))
	must(t)(r.g.OpenSession("s", "alice", tEvent))
	var st Status
	for i := 0; i < 8; i++ {
		m := goodMouse()
		m.At = tEvent.Add(time.Duration(i) * 20 * time.Millisecond)
		m.X += int32(i)
		st = must(t)(r.g.ObserveMouse(m))
	}
	c := DefaultConfig()
	if want := c.Trust.InitialTrust - c.Trust.MaxBehaviourLoss; st.Trust != want || st.Tier < TierSoft || !strings.Contains(st.Reasons[0].Text, "mouse use unlike this user's") {
		t.Fatalf("after one foreign mouse window: %+v", st)
	}
}
