package guard

import (
	"fmt"
	"math"
	"time"
)

// SavedSession is a live session's standing as SaveSession takes it and RestoreSession gives
// it back after a restart of the process that holds the guard. It holds no events and no
// window contents: what the session's windows were scoring starts afresh.
type SavedSession struct {
	ID, User string
	Opened   time.Time // when the session opened
	Last     time.Time // its newest event (or opening) when the standing was taken
	Trust    float64
	Tier     Tier
	Risk     float64 // context risk in [0, 1]
	Revoked  bool
	// Challenge is the open challenge (zero if none); LastChallenge the ID of the session's
	// latest challenge, so that new ones do not reuse an ID an application has seen.
	Challenge     Challenge
	LastChallenge uint64
}

// SaveSession returns session id's standing, for RestoreSession after a restart.
func (g *Guard) SaveSession(id string) (SavedSession, error) {
	s, err := g.lookup(id)
	if err != nil {
		return SavedSession{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &s.eng
	return SavedSession{ID: s.id, User: s.user.user, Opened: s.opened, Last: s.last, Trust: e.trust, Tier: e.tier(),
		Risk: e.risk, Revoked: e.revoked, Challenge: e.challenge, LastChallenge: e.lastID}, nil
}

// RestoreSession takes back a session SaveSession saved, at time at (now, after the restart).
// It never raises the session's standing: trust is the saved trust (the guard's trust does not
// decay with time, so the downtime costs none), the tier is at least the saved tier (a
// challenge is issued if the saved tier called for one the saved state lacks), a revoked or
// terminated session stays revoked, and a challenge whose deadline passed during the downtime
// counts as unanswered, as it would have had the process kept running. Earning starts with an
// empty allowance, as in a new session.
func (g *Guard) RestoreSession(sv SavedSession, at time.Time) (Status, error) {
	if err := checkID("restore", "session ID", sv.ID); err != nil {
		return Status{}, err
	}
	if err := checkID("restore", "user", sv.User); err != nil {
		return Status{}, err
	}
	for _, t := range []struct {
		field string
		t     time.Time
	}{{"open time", sv.Opened}, {"restore time", at}} {
		if err := checkEventTime("restore", sv.ID, t.field, t.t); err != nil {
			return Status{}, err
		}
	}
	if now := g.cfg.Clock(); sv.Opened.After(now.Add(g.cfg.MaxClockSkew)) {
		return Status{}, fmt.Errorf("%w: session %q opened at %s, in the future", ErrBadTime, sv.ID, sv.Opened.Format(time.RFC3339))
	}
	if math.IsNaN(sv.Trust) || sv.Trust < 0 || sv.Trust > MaxTrust || math.IsNaN(sv.Risk) || sv.Risk < 0 || sv.Risk > 1 {
		return Status{}, invalid("restore", sv.ID, "trust %v or risk %v out of range", sv.Trust, sv.Risk)
	}
	if sv.Tier > TierTerminate || sv.Challenge.Open() && sv.Challenge.Tier != TierSoft && sv.Challenge.Tier != TierHard {
		return Status{}, invalid("restore", sv.ID, "tier %v, challenge tier %v", sv.Tier, sv.Challenge.Tier)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.index.Load()
	if _, dup := old[sv.ID]; dup {
		return Status{}, fmt.Errorf("%w: %q", ErrSessionExists, sv.ID)
	}
	p, err := g.profile(sv.User)
	if err != nil {
		return Status{}, err
	}
	last := maxTime(sv.Last, sv.Opened)
	at = maxTime(at, last)
	s := &sessionState{id: sv.ID, user: p, opened: sv.Opened, last: at, cfg: &g.cfg,
		eng:  newEngine(&g.cfg, sv.Trust, at),
		keys: newWindow[KeystrokeEvent](g.cfg.KeystrokeWindow, g.cfg.KeystrokeHop, g.cfg.Trust.Sustain),
		mice: newWindow[MouseEvent](g.cfg.MouseWindow, g.cfg.MouseHop, g.cfg.Trust.Sustain),
	}
	e := &s.eng
	e.risk, e.lastID = sv.Risk, max(sv.LastChallenge, sv.Challenge.ID)
	e.ledger.add(Reason{Signal: SignalSession, Text: fmt.Sprintf("session restored after a restart at trust %.0f (standing saved at %s)",
		sv.Trust, last.UTC().Format(time.RFC3339))})
	if sv.Revoked || sv.Tier == TierTerminate {
		e.revoked, e.trust = true, 0
	} else {
		e.challenge = sv.Challenge
	}
	e.shown = e.tier()
	e.emit(TransitionRestored, at, e.challenge.ID)
	if !e.revoked {
		if !e.expire(at) && sv.Tier > e.tier() && sv.Tier <= TierHard {
			e.issue(at, sv.Tier)
		}
		e.settle(at)
	}
	return g.publish(old, s, at), nil
}
