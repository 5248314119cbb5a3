package takeover

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models/keystroke"
)

// replayStart is when every replayed session opens: a Monday morning, so that no replay
// depends on the clock of the machine running it.
var replayStart = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)

// replayPolicyText is the policy of the replay guards. Nothing is authorized during a replay;
// a guard needs a policy all the same.
const replayPolicyText = "docs.read 50\n"

// replayer replays typing as sessions of one user, each through a guard of its own, so that no
// session's outcome depends on another's.
type replayer struct {
	cfg    guard.Config
	policy *guard.Policy
}

func newReplayer(cfg guard.Config) (*replayer, error) {
	p, err := guard.ParsePolicy(strings.NewReader(replayPolicyText))
	if err != nil {
		return nil, err
	}
	return &replayer{cfg: cfg, policy: p}, nil
}

// stepUps counts what a guard records: challenges issued and sessions revoked.
type stepUps struct{ issued, revoked int }

func (c *stepUps) RecordDecision(guard.Decision) {}

func (c *stepUps) RecordTransition(t guard.Transition) {
	switch t.Kind {
	case guard.TransitionChallengeIssued:
		c.issued++
	case guard.TransitionRevoked:
		c.revoked++
	}
}

func (c *stepUps) total() int { return c.issued + c.revoked }

// session is one replayed session: its guard, what the guard recorded and the replay clock.
type session struct {
	g   *guard.Guard
	id  string
	rec stepUps
	now time.Time
}

// open starts a session of a user scored by scorer, on a known device and network at a fixed
// place, so that context never moves trust: the user's first device and network are learnt on
// first use, and a new user's hours are not judged.
func (r *replayer) open(id string, scorer guard.BehaviourScorer) (*session, error) {
	s := &session{id: id, now: replayStart}
	cfg := r.cfg
	cfg.Scorers = guard.ScorerSourceFunc(func(string) (guard.BehaviourScorer, error) { return scorer, nil })
	cfg.Recorder = &s.rec
	cfg.Clock = func() time.Time { return s.now }
	g, err := guard.New(cfg, r.policy)
	if err != nil {
		return nil, err
	}
	s.g = g
	if _, err := g.OpenSession(id, "participant", replayStart); err != nil {
		return nil, err
	}
	_, err = g.ObserveContext(guard.ContextEvent{Session: id, IP: netip.MustParseAddr("192.0.2.10"),
		Lat: 60.1699, Lon: 24.9384, DeviceFingerprint: "replay-laptop", Network: "replay-office", LocalTime: replayStart})
	return s, err
}

// stream is recorded input replayed into sessions: one person's keystrokes or pointer events,
// in time order. Typing and mouse replays share everything else.
type stream interface {
	// len is the number of events.
	len() int
	// offset is event i's time from the stream's first event.
	offset(i int) time.Duration
	// observe gives event i to the session's guard as happening at at.
	observe(s *session, i int, at time.Time) (guard.Status, error)
}

// feed replays event i of st at at, and passes at once any challenge the guard puts, as the
// session's owner would when pass is set.
func (s *session) feed(st stream, i int, at time.Time, pass bool) (guard.Status, error) {
	status, err := st.observe(s, i, at)
	if err != nil {
		return status, err
	}
	if pass && status.Challenge.Open() && !status.Revoked {
		// Answered at the event's time, the session's newest (a keystroke's press), so that
		// the input that follows is not out of order.
		id := status.Challenge.ID
		if status, err = s.g.AnswerChallenge(s.id, id, true, at); err != nil {
			return status, fmt.Errorf("takeover: passing challenge %d: %w", id, err)
		}
	}
	return status, nil
}

// keys is typing to replay.
type keys []keystroke.Keystroke

func (ks keys) len() int                   { return len(ks) }
func (ks keys) offset(i int) time.Duration { return ks[i].Press - ks[0].Press }

// observe replays keystroke i, pressed at at, with its recorded hold time.
func (ks keys) observe(s *session, i int, at time.Time) (guard.Status, error) {
	k := ks[i]
	ev := guard.KeystrokeEvent{Session: s.id, Press: at, Release: at, Key: uint16(k.Code)}
	if k.Release != 0 {
		ev.Release = at.Add(k.Release - k.Press)
	}
	s.now = ev.Release
	return s.g.ObserveKeystroke(ev)
}

// genuineRun is what a genuine session went through.
type genuineRun struct {
	// events is the number of events replayed (keystrokes or pointer events).
	events, stepUps, revoked int
}

// genuine replays a person's own input as one session, passing every challenge.
func (r *replayer) genuine(id string, scorer guard.BehaviourScorer, own stream) (genuineRun, error) {
	var out genuineRun
	s, err := r.open(id, scorer)
	if err != nil {
		return out, err
	}
	t0 := replayStart.Add(time.Second)
	for i := range own.len() {
		st, err := s.feed(own, i, t0.Add(own.offset(i)), true)
		if err != nil {
			return out, fmt.Errorf("takeover: genuine session %s: %w", id, err)
		}
		out.events++
		if st.Revoked {
			break
		}
	}
	out.stepUps, out.revoked = s.rec.total(), s.rec.revoked
	return out, nil
}

// takeoverRun is what a takeover session went through.
type takeoverRun struct {
	// prefixStepUps counts challenges and terminations of the owner's input before the
	// takeover; prefixRevoked is set when the session ended before the takeover.
	prefixStepUps int
	prefixRevoked bool
	// toChallenge is the number of the other person's events until the session was
	// challenged (0: never); tier the tier it reached then; typed the events replayed.
	toChallenge, typed int
	tier               guard.Tier
}

// takeover replays the owner's first prefix events, then the other person's input from at
// after the owner's first event, until the session is challenged or the input runs out. at
// must not come before the owner's last event replayed.
func (r *replayer) takeover(id string, scorer guard.BehaviourScorer, own stream, prefix int, other stream, at time.Duration) (takeoverRun, error) {
	var out takeoverRun
	if prefix < 1 || prefix > own.len() || other.len() == 0 || at < own.offset(prefix-1) {
		return out, fmt.Errorf("takeover: session %s: takeover after %d of %d events at %v, %d to take over with", id, prefix, own.len(), at, other.len())
	}
	s, err := r.open(id, scorer)
	if err != nil {
		return out, err
	}
	t0 := replayStart.Add(time.Second)
	for i := range prefix {
		st, err := s.feed(own, i, t0.Add(own.offset(i)), true)
		if err != nil {
			return out, fmt.Errorf("takeover: session %s before the takeover: %w", id, err)
		}
		if st.Revoked {
			out.prefixStepUps, out.prefixRevoked = s.rec.total(), true
			return out, nil
		}
	}
	out.prefixStepUps = s.rec.total()
	t1 := t0.Add(at)
	for j := range other.len() {
		st, err := s.feed(other, j, t1.Add(other.offset(j)), false)
		if errors.Is(err, guard.ErrRevoked) {
			st, err = s.g.Status(id)
		}
		if err != nil {
			return out, fmt.Errorf("takeover: session %s after the takeover: %w", id, err)
		}
		out.typed = j + 1
		if s.rec.total() > out.prefixStepUps || st.Tier >= guard.TierSoft {
			out.toChallenge, out.tier = j+1, st.Tier
			return out, nil
		}
	}
	return out, nil
}
