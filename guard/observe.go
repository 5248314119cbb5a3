package guard

import (
	"fmt"
	"time"
)

// ObserveKeystroke adds a keystroke to its session. Every KeystrokeHop keystrokes (once
// KeystrokeWindow have arrived) the owner's scorer scores the last KeystrokeWindow and trust
// moves. It returns the session's status after the event.
func (g *Guard) ObserveKeystroke(ev KeystrokeEvent) (Status, error) {
	if err := ev.validate(); err != nil {
		return Status{}, err
	}
	return g.update(ev.Session, ev.Press, true, func(s *sessionState, at time.Time) error {
		w, full := s.keys.push(ev)
		if !full || s.user.scorer == nil {
			return nil
		}
		s.user.mu.Lock()
		score, err := s.user.scorer.ScoreKeystrokes(w)
		s.user.mu.Unlock()
		return s.scored(at, score, err, "typing", &s.keys.losses)
	})
}

// ObserveMouse adds a mouse event to its session, scoring windows as ObserveKeystroke does.
func (g *Guard) ObserveMouse(ev MouseEvent) (Status, error) {
	if err := ev.validate(); err != nil {
		return Status{}, err
	}
	return g.update(ev.Session, ev.At, true, func(s *sessionState, at time.Time) error {
		w, full := s.mice.push(ev)
		if !full || s.user.scorer == nil {
			return nil
		}
		s.user.mu.Lock()
		score, err := s.user.scorer.ScoreMouse(w)
		s.user.mu.Unlock()
		return s.scored(at, score, err, "mouse use", &s.mice.losses)
	})
}

// ObserveBehaviour applies a behaviour score computed outside the guard: anomaly in [0, 1]
// (0 typical of the owner, 1 certainly someone else) for input ending at at, with the features
// that deviated most.
func (g *Guard) ObserveBehaviour(session string, at time.Time, anomaly float64, deviations []Deviation) (Status, error) {
	if err := checkID("behaviour", "session", session); err != nil {
		return Status{}, err
	}
	if err := checkEventTime("behaviour", session, "time", at); err != nil {
		return Status{}, err
	}
	score := BehaviourScore{Anomaly: anomaly, Deviations: deviations}
	if err := checkScore(session, score); err != nil {
		return Status{}, err
	}
	return g.update(session, at, true, func(s *sessionState, at time.Time) error {
		s.behaviour(at, score, "behaviour", score.Anomaly, 1)
		return nil
	})
}

// scored applies a scorer's result for a window of the stream whose losses are l.
func (s *sessionState) scored(at time.Time, score BehaviourScore, err error, source string, l *losses) error {
	if err != nil {
		return errScorer(s.user.user, err)
	}
	if err := checkScore(s.id, score); err != nil {
		return fmt.Errorf("guard: scorer for user %q returned a bad score: %w", s.user.user, err)
	}
	sustained := l.sustained(score.Anomaly)
	x := s.cfg.Trust.severity(sustained)
	if s.behaviour(at, score, source, sustained, l.unpaid(x)) == windowDeviating {
		l.pay(x)
	}
	return nil
}

// behaviour moves trust on a scored window and, after enough consistent windows in good
// standing, teaches the user's baseline what this session has shown.
func (s *sessionState) behaviour(at time.Time, score BehaviourScore, source string, sustained, fresh float64) verdict {
	v := s.eng.behaviour(at, score, source, sustained, fresh)
	if v != windowConsistent || !s.eng.goodStanding() {
		return v
	}
	s.user.mu.Lock()
	defer s.user.mu.Unlock()
	s.cx.pending.maturity++
	if s.eng.consistent >= s.cfg.Context.LearnAfterWindows {
		s.user.commit(&s.cx, at)
	}
	return v
}

// ObserveContext applies the context rules (impossible travel, new device, new network,
// unusual hour) to where and on what the session is being used.
func (g *Guard) ObserveContext(ev ContextEvent) (Status, error) {
	if err := ev.validate(); err != nil {
		return Status{}, err
	}
	return g.update(ev.Session, ev.LocalTime, true, func(s *sessionState, at time.Time) error {
		s.user.mu.Lock()
		sigs := s.user.evaluate(&s.cx, &ev, &g.cfg.Context)
		s.user.mu.Unlock()
		s.eng.context(at, sigs)
		return nil
	})
}
