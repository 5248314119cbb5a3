package guard

import (
	"fmt"
	"math"
	"time"
)

// answer applies the user's answer to challenge id. A pass restores trust to the tier's pass
// level; a fail (or an answer after the deadline) escalates: a soft challenge becomes a hard
// one, a hard one terminates the session.
func (e *engine) answer(at time.Time, id uint64, passed bool) error {
	if e.revoked {
		return ErrRevoked
	}
	c := e.challenge
	if !c.Open() || id != c.ID {
		return fmt.Errorf("%w: challenge %d (open: %d)", ErrNoChallenge, id, c.ID)
	}
	if at.After(c.Deadline) {
		e.fail(at, TransitionChallengeExpired)
		return fmt.Errorf("%w: challenge %d answered after its deadline %s; counted as unanswered",
			ErrNoChallenge, id, c.Deadline.Format(time.RFC3339))
	}
	if !passed {
		e.fail(at, TransitionChallengeFailed)
		return nil
	}
	restore := e.cfg.Tiers.SoftPassTrust
	if c.Tier == TierHard {
		restore = e.cfg.Tiers.HardPassTrust
	}
	e.restore(at, restore, Reason{Signal: SignalChallenge, Text: "passed the " + tierWord(c.Tier) + " challenge"}, TransitionChallengePassed, c.ID)
	return nil
}

// restore raises trust to at least level after proof of the owner's presence and starts the
// explanation afresh from r.
func (e *engine) restore(at time.Time, level float64, r Reason, kind TransitionKind, challenge uint64) {
	r.Impact = math.Max(0, level-e.trust)
	e.trust += r.Impact
	e.risk, e.consistent = 0, 0
	e.challenge = Challenge{}
	e.ledger.reset(r)
	e.emit(kind, at, challenge)
}

// fail escalates the open challenge: from soft to hard by dropping trust into the hard band,
// from hard to termination.
func (e *engine) fail(at time.Time, kind TransitionKind) {
	c := e.challenge
	e.challenge = Challenge{}
	how := "failed"
	if kind == TransitionChallengeExpired {
		how = fmt.Sprintf("left unanswered for %v", at.Sub(c.Issued).Round(time.Second))
	}
	text := fmt.Sprintf("%s challenge %s", tierWord(c.Tier), how)
	if c.Tier == TierHard {
		e.lose(Reason{Signal: SignalChallenge, Impact: -e.trust, Text: text})
	} else {
		e.lose(Reason{Signal: SignalChallenge, Impact: math.Min(0, e.cfg.Tiers.HardBelow-1-e.trust), Text: text})
	}
	e.emit(kind, at, c.ID)
	e.settle(at)
}

// expire fails the open challenge if its deadline passed before now, and reports whether it did.
func (e *engine) expire(now time.Time) bool {
	if e.revoked || !e.challenge.Open() || !now.After(e.challenge.Deadline) {
		return false
	}
	e.fail(now, TransitionChallengeExpired)
	return true
}

// stepUp opens a challenge of at least tier on request (before a sensitive action, say),
// or returns the open one if it is at least as strong.
func (e *engine) stepUp(at time.Time, tier Tier) (Challenge, error) {
	if e.revoked {
		return Challenge{}, ErrRevoked
	}
	if tier != TierSoft && tier != TierHard {
		return Challenge{}, fmt.Errorf("%w: step-up tier must be soft or hard, not %v", ErrInvalidEvent, tier)
	}
	if e.challenge.Open() && e.challenge.Tier >= tier {
		return e.challenge, nil
	}
	return e.issue(at, tier), nil
}

// feedback applies an analyst's verdict. Genuine restores trust like a passed hard challenge
// (a revoked session stays revoked); compromised revokes.
func (e *engine) feedback(at time.Time, v Verdict) {
	if e.revoked {
		return
	}
	switch v {
	case VerdictGenuine:
		e.restore(at, e.cfg.Tiers.HardPassTrust, Reason{Signal: SignalFeedback, Text: "a security analyst confirmed the owner"}, TransitionFeedbackGenuine, 0)
	case VerdictCompromised:
		e.lose(Reason{Signal: SignalFeedback, Impact: -e.trust, Text: "a security analyst confirmed the session compromised"})
		e.emit(TransitionFeedbackCompromised, at, 0)
		e.revoke(at)
	}
}
