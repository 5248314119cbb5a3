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

// typeKey replays keystroke k, whose press is at at, and passes at once any challenge the
// guard puts, as the session's owner would when pass is set.
func (s *session) typeKey(k keystroke.Keystroke, at time.Time, pass bool) (guard.Status, error) {
	ev := guard.KeystrokeEvent{Session: s.id, Press: at, Release: at, Key: uint16(k.Code)}
	if k.Release != 0 {
		ev.Release = at.Add(k.Release - k.Press)
	}
	s.now = ev.Release
	st, err := s.g.ObserveKeystroke(ev)
	if err != nil {
		return st, err
	}
	if pass && st.Challenge.Open() && !st.Revoked {
		// Answered at the keystroke's press, the session's newest event time, so that the
		// typing that follows is not out of order.
		id := st.Challenge.ID
		if st, err = s.g.AnswerChallenge(s.id, id, true, at); err != nil {
			return st, fmt.Errorf("takeover: passing challenge %d: %w", id, err)
		}
	}
	return st, nil
}

// genuineRun is what a genuine session went through.
type genuineRun struct {
	keystrokes, stepUps, revoked int
}

// genuine replays a participant's own typing as one session, passing every challenge.
func (r *replayer) genuine(id string, scorer guard.BehaviourScorer, ks []keystroke.Keystroke) (genuineRun, error) {
	var out genuineRun
	s, err := r.open(id, scorer)
	if err != nil {
		return out, err
	}
	t0 := replayStart.Add(time.Second)
	for _, k := range ks {
		st, err := s.typeKey(k, t0.Add(k.Press-ks[0].Press), true)
		if err != nil {
			return out, fmt.Errorf("takeover: genuine session %s: %w", id, err)
		}
		out.keystrokes++
		if st.Revoked {
			break
		}
	}
	out.stepUps, out.revoked = s.rec.total(), s.rec.revoked
	return out, nil
}

// takeoverRun is what a takeover session went through.
type takeoverRun struct {
	// prefixStepUps counts challenges and terminations of the owner's typing before the
	// takeover; prefixRevoked is set when the session ended before the takeover.
	prefixStepUps int
	prefixRevoked bool
	// toChallenge is the number of the other person's keystrokes until the session was
	// challenged (0: never); tier the tier it reached then; typed the keystrokes replayed.
	toChallenge, typed int
	tier               guard.Tier
}

// takeover replays the owner's first prefix keystrokes, then the other person's typing from the
// owner's next natural pause on, until the session is challenged or the typing runs out.
func (r *replayer) takeover(id string, scorer guard.BehaviourScorer, own []keystroke.Keystroke, prefix int, other []keystroke.Keystroke) (takeoverRun, error) {
	var out takeoverRun
	if prefix < 1 || prefix >= len(own) || len(other) == 0 {
		return out, fmt.Errorf("takeover: session %s: takeover after %d of %d keystrokes, %d to take over with", id, prefix, len(own), len(other))
	}
	s, err := r.open(id, scorer)
	if err != nil {
		return out, err
	}
	t0 := replayStart.Add(time.Second)
	for _, k := range own[:prefix] {
		st, err := s.typeKey(k, t0.Add(k.Press-own[0].Press), true)
		if err != nil {
			return out, fmt.Errorf("takeover: session %s before the takeover: %w", id, err)
		}
		if st.Revoked {
			out.prefixStepUps, out.prefixRevoked = s.rec.total(), true
			return out, nil
		}
	}
	out.prefixStepUps = s.rec.total()
	// The other person starts where the owner would have pressed their next key.
	t1 := t0.Add(own[prefix].Press - own[0].Press)
	for j, k := range other {
		st, err := s.typeKey(k, t1.Add(k.Press-other[0].Press), false)
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
