package guard

import (
	"fmt"
	"time"
)

// AnswerChallenge applies the user's answer to challenge id of a session. A pass restores trust
// and teaches the user's baseline what the session has shown (its new device, network, place
// and hours) and tells the scorer; a fail escalates (soft to hard, hard to termination). An
// answer after the deadline counts as unanswered and returns an error wrapping ErrNoChallenge.
func (g *Guard) AnswerChallenge(session string, id uint64, passed bool, at time.Time) (Status, error) {
	if err := checkEventTime("answer", session, "time", at); err != nil {
		return Status{}, err
	}
	return g.update(session, at, false, func(s *sessionState, at time.Time) error {
		if err := s.eng.answer(at, id, passed); err != nil || !passed {
			return err
		}
		s.confirm(at, VerdictChallengePassed)
		return nil
	})
}

// StepUp opens a challenge of tier (TierSoft or TierHard) on the application's request, for
// example when Authorize denied a sensitive action for low trust; it returns the open challenge
// if one at least as strong is already open.
func (g *Guard) StepUp(session string, tier Tier, at time.Time) (Challenge, error) {
	if err := checkEventTime("step-up", session, "time", at); err != nil {
		return Challenge{}, err
	}
	var c Challenge
	_, err := g.update(session, at, false, func(s *sessionState, at time.Time) error {
		var err error
		c, err = s.eng.stepUp(at, tier)
		return err
	})
	return c, err
}

// Feedback applies a security analyst's verdict on a session. Genuine restores trust (unless
// the session was already revoked), teaches the user's baseline what the session has shown and
// tells the scorer, so that genuine drift stops raising alarms. Compromised revokes the session,
// removes from the baseline what the session taught it and tells the scorer.
func (g *Guard) Feedback(session string, v Verdict, at time.Time) (Status, error) {
	if v != VerdictGenuine && v != VerdictCompromised {
		return Status{}, fmt.Errorf("%w: feedback verdict must be genuine or compromised, not %v", ErrInvalidEvent, v)
	}
	if err := checkEventTime("feedback", session, "time", at); err != nil {
		return Status{}, err
	}
	if now := g.cfg.Clock(); at.After(now.Add(g.cfg.MaxClockSkew)) {
		return Status{}, fmt.Errorf("%w: feedback for session %q at %s is %v in the future", ErrBadTime, session, at.Format(time.RFC3339), at.Sub(now).Round(time.Second))
	}
	s, err := g.lookup(session)
	if err != nil {
		return Status{}, err
	}
	// Feedback also reaches revoked sessions: an analyst may clear or confirm them afterwards.
	s.mu.Lock()
	defer s.mu.Unlock()
	at = maxTime(at, s.last)
	s.eng.feedback(at, v)
	s.confirm(at, v)
	return g.flush(s, at), nil
}

// confirm teaches or untaches the user's baseline after a verdict and tells the scorer.
func (s *sessionState) confirm(at time.Time, v Verdict) {
	p := s.user
	p.mu.Lock()
	defer p.mu.Unlock()
	if v == VerdictCompromised {
		p.rollback(&s.cx)
	} else {
		p.commit(&s.cx, at)
	}
	if p.scorer != nil {
		p.scorer.Feedback(Feedback{User: p.user, Session: s.id, Verdict: v, From: s.opened, To: at})
	}
}

// Tick fails the challenges whose deadline passed by now. Call it from the loop that owns the
// guard (every few seconds); events and answers also check deadlines, and Authorize denies
// while a challenge is overdue, so Tick only makes escalation visible without new input.
func (g *Guard) Tick(now time.Time) {
	for _, s := range *g.index.Load() {
		s.mu.Lock()
		if s.eng.expire(maxTime(now, s.last)) {
			g.flush(s, maxTime(now, s.last))
		}
		s.mu.Unlock()
	}
}
