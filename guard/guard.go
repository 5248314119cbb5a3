package guard

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Guard keeps the trust of live sessions and answers Authorize. It is safe for concurrent use:
// each session's events are applied in turn under the session's lock (the scoring path), which
// publishes an immutable Status that Authorize reads without locks.
type Guard struct {
	cfg    Config
	policy atomic.Pointer[Policy]
	// index maps session IDs to sessions. It is copied on every open and close so that
	// Authorize reads it without a lock: opening sessions is rare, authorizing is not.
	index atomic.Pointer[map[string]*sessionState]

	mu    sync.Mutex // serialises writers of index, and users
	users map[string]*profile

	unknownSession []Reason // built once, so that Authorize does not allocate
}

// New returns a Guard enforcing policy.
func New(cfg Config, policy *Policy) (*Guard, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Guard{cfg: cfg, users: map[string]*profile{}}
	if err := g.SetPolicy(policy); err != nil {
		return nil, err
	}
	g.index.Store(&map[string]*sessionState{})
	g.unknownSession = []Reason{{Signal: SignalSession, Text: "no open session has this ID"}}
	return g, nil
}

// SetPolicy replaces the policy; Authorize calls already under way finish under the old one.
func (g *Guard) SetPolicy(p *Policy) error {
	if p == nil || len(p.min) == 0 {
		return fmt.Errorf("%w: nil or empty policy", ErrPolicy)
	}
	g.policy.Store(p)
	return nil
}

// session is one live session: the scoring path's state behind mu, and the last published
// status behind an atomic pointer.
type sessionState struct {
	id     string
	user   *profile
	opened time.Time
	cfg    *Config

	mu   sync.Mutex
	last time.Time // newest event time
	eng  engine
	cx   sessionContext
	keys window[KeystrokeEvent]
	mice window[MouseEvent]

	snap atomic.Pointer[Status]
}

// OpenSession starts tracking a session of user that opened (logged in) at at. A user's first
// session creates their baseline and asks Config.Scorers for their scorer.
func (g *Guard) OpenSession(id, user string, at time.Time) (Status, error) {
	if err := checkID("open", "session ID", id); err != nil {
		return Status{}, err
	}
	if err := checkID("open", "user", user); err != nil {
		return Status{}, err
	}
	if err := checkEventTime("open", id, "open time", at); err != nil {
		return Status{}, err
	}
	if now := g.cfg.Clock(); at.After(now.Add(g.cfg.MaxClockSkew)) {
		return Status{}, fmt.Errorf("%w: session %q opens at %s, %v in the future", ErrBadTime, id, at.Format(time.RFC3339), at.Sub(now).Round(time.Second))
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.index.Load()
	if _, dup := old[id]; dup {
		return Status{}, fmt.Errorf("%w: %q", ErrSessionExists, id)
	}
	p, err := g.profile(user)
	if err != nil {
		return Status{}, err
	}
	p.mu.Lock()
	// Other sessions of the user teach it concurrently: read its maturity once, under its lock.
	start, maturity := p.startTrust(&g.cfg.Trust), p.maturity
	p.mu.Unlock()
	s := &sessionState{id: id, user: p, opened: at, last: at, cfg: &g.cfg,
		eng:  newEngine(&g.cfg, start, at),
		keys: newWindow[KeystrokeEvent](g.cfg.KeystrokeWindow, g.cfg.KeystrokeHop, g.cfg.Trust.Sustain),
		mice: newWindow[MouseEvent](g.cfg.MouseWindow, g.cfg.MouseHop, g.cfg.Trust.Sustain),
	}
	s.eng.ledger.add(Reason{Signal: SignalSession, Text: fmt.Sprintf("session opened at trust %s (%d consistent windows known for this user)", trustText(start), maturity)})
	s.eng.emit(TransitionOpened, at, 0)
	return g.publish(old, s, at), nil
}

// profile returns user's baseline, creating it (and asking Config.Scorers for the user's
// scorer) on the user's first session. g.mu must be held.
func (g *Guard) profile(user string) (*profile, error) {
	p := g.users[user]
	if p == nil {
		var scorer BehaviourScorer
		if g.cfg.Scorers != nil {
			var err error
			if scorer, err = g.cfg.Scorers.ScorerFor(user); err != nil {
				return nil, fmt.Errorf("guard: scorer for user %q: %w", user, err)
			}
		}
		p = newProfile(user, scorer)
		g.users[user] = p
	}
	return p, nil
}

// publish adds the new session s to a copy of index old, publishes its first status and the
// copy, and returns the status. g.mu must be held.
func (g *Guard) publish(old map[string]*sessionState, s *sessionState, at time.Time) Status {
	next := make(map[string]*sessionState, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[s.id] = s
	s.mu.Lock()
	st := g.flush(s, at)
	s.mu.Unlock()
	g.index.Store(&next)
	return st
}

// CloseSession stops tracking a session (logout, or after termination has been enforced).
func (g *Guard) CloseSession(id string, at time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.index.Load()
	s, ok := old[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSession, id)
	}
	next := make(map[string]*sessionState, len(old))
	for k, v := range old {
		if k != id {
			next[k] = v
		}
	}
	g.index.Store(&next)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.eng.emit(TransitionClosed, maxTime(at, s.last), 0)
	g.flush(s, maxTime(at, s.last))
	return nil
}

// Status returns a session's last published status.
func (g *Guard) Status(id string) (Status, error) {
	s, err := g.lookup(id)
	if err != nil {
		return Status{}, err
	}
	return *s.snap.Load(), nil
}

func (g *Guard) lookup(id string) (*sessionState, error) {
	s := (*g.index.Load())[id]
	if s == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownSession, id)
	}
	return s, nil
}

// update runs fn on the scoring path of session id for an event at time at: it checks the
// event's time against the session (ordered events must not go back), fails an overdue
// challenge, runs fn, then publishes the new status and records transitions.
func (g *Guard) update(id string, at time.Time, ordered bool, fn func(s *sessionState, at time.Time) error) (Status, error) {
	s, err := g.lookup(id)
	if err != nil {
		return Status{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, err = s.admit(at, g.cfg.Clock(), ordered); err == nil {
		err = fn(s, at)
	}
	return g.flush(s, at), err
}

// admit checks an event's time and fails an overdue challenge. Unordered inputs (answers,
// feedback) may carry a time a little behind the newest event; they are applied at the newest.
func (s *sessionState) admit(at, now time.Time, ordered bool) (time.Time, error) {
	c := s.cfg
	if at.After(now.Add(c.MaxClockSkew)) {
		return at, fmt.Errorf("%w: session %q: event at %s is %v in the future", ErrBadTime, s.id, at.Format(time.RFC3339Nano), at.Sub(now).Round(time.Millisecond))
	}
	// Order is judged against the newest event, or the clock if that event lies ahead of it:
	// one event dated minutes ahead (a script in the page can send one) must not make every
	// event after it "out of order", so that nothing is scored until the clock catches up.
	ref := s.last
	if ref.After(now) {
		ref = now
	}
	if ordered && at.Before(ref.Add(-c.ReorderTolerance)) {
		what := "the session's newest event"
		if s.last.Equal(s.opened) {
			what = "the session's opening"
		}
		return at, fmt.Errorf("%w: session %q: event at %s is %v older than %s (%s)", ErrOutOfOrder, s.id,
			at.Format(time.RFC3339Nano), ref.Sub(at), what, ref.Format(time.RFC3339Nano))
	}
	at = maxTime(at, s.last)
	s.last = at
	s.eng.expire(at)
	if s.eng.revoked {
		return at, fmt.Errorf("%w: %q", ErrRevoked, s.id)
	}
	return at, nil
}

// flush publishes a new status if anything changed and hands pending transitions to the
// Recorder. It returns the current status. s.mu must be held.
func (g *Guard) flush(s *sessionState, at time.Time) Status {
	if !s.eng.changed {
		return *s.snap.Load()
	}
	e := &s.eng
	st := &Status{Session: s.id, User: s.user.user, Trust: roundTrust(e.trust), Tier: e.tier(),
		Revoked: e.revoked, Challenge: e.challenge, Reasons: e.ledger.top(), Updated: at}
	s.snap.Store(st)
	e.changed = false
	for _, t := range e.out {
		t.Session, t.User, t.Reasons = s.id, s.user.user, st.Reasons
		if g.cfg.Recorder != nil {
			g.cfg.Recorder.RecordTransition(t)
		}
	}
	e.out = e.out[:0]
	return *st
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// errScorer wraps a scorer's failure.
func errScorer(user string, err error) error {
	if errors.Is(err, ErrNotScored) {
		return nil
	}
	return fmt.Errorf("guard: scorer for user %q: %w", user, err)
}
