package guard

import (
	"fmt"
	"math"
	"time"
)

// engine is the trust state machine of one session: evidence in, trust, tier and challenges
// out. It reads no clock, takes no locks and starts no goroutines; every step is given its time,
// so a recorded stream of evidence replays to the same states.
//
// Trust is slow to earn and instant to lose. A consistent window earns at most GainPerWindow,
// and all earning together at most GainPerMinute (a token bucket of depth GainBurst), while a
// deviating window or a context signal takes its full loss at once.
type engine struct {
	cfg        *Config
	trust      float64
	allowance  float64   // trust that time has made available to earn
	refilled   time.Time // when allowance was last topped up
	risk       float64   // context risk in [0, 1]: amplifies behavioural losses, damps gains
	consistent int       // consistent windows since the last loss
	revoked    bool
	challenge  Challenge // the open challenge; zero if none
	lastID     uint64
	ledger     ledger
	changed    bool         // something a Status shows changed since the last publish
	shown      Tier         // the tier of the last transition: the From of the next
	out        []Transition // transitions not yet handed to the session
}

func newEngine(cfg *Config, start float64, at time.Time) engine {
	return engine{cfg: cfg, trust: start, refilled: at, changed: true}
}

// band is the tier trust alone calls for.
func (e *engine) band() Tier {
	t := &e.cfg.Tiers
	switch {
	case e.trust >= t.SoftBelow:
		return TierMonitor
	case e.trust >= t.HardBelow:
		return TierSoft
	case e.trust >= t.TerminateBelow:
		return TierHard
	}
	return TierTerminate
}

// tier is the session's tier: its band, raised by an open challenge, terminal once revoked.
func (e *engine) tier() Tier {
	if e.revoked {
		return TierTerminate
	}
	t := e.band()
	if e.challenge.Open() && e.challenge.Tier > t {
		t = e.challenge.Tier
	}
	return t
}

// goodStanding reports whether the session may teach the user's baseline.
func (e *engine) goodStanding() bool {
	return !e.revoked && !e.challenge.Open() && e.band() == TierMonitor
}

func (e *engine) refill(at time.Time) {
	if at.After(e.refilled) {
		c := &e.cfg.Trust
		e.allowance = math.Min(c.GainBurst, e.allowance+c.GainPerMinute*at.Sub(e.refilled).Minutes())
		e.refilled = at
	}
}

// verdict is what one scored window did to a session.
type verdict uint8

const (
	windowNeutral    verdict = iota
	windowConsistent         // earned (or would have, but for an open challenge)
	windowDeviating          // cost trust
)

// behaviour applies one scored window. Its anomaly decides whether it is consistent; sustained,
// the least anomaly of the windows scored over the last Trust.Sustain events (the window's own
// at most), decides its loss. fresh in [0, 1] is the share of that loss the window's events have
// not yet paid (see losses): overlapping windows share input, and one stretch of odd input must
// not be charged twice. A window of wholly new input takes its full loss at once.
func (e *engine) behaviour(at time.Time, s BehaviourScore, source string, sustained, fresh float64) verdict {
	if e.revoked {
		return windowNeutral
	}
	c := &e.cfg.Trust
	e.refill(at)
	switch a := s.Anomaly; {
	case a < c.ConsistentBelow:
		e.consistent++
		// Earning pauses while a challenge is open: the user must answer it.
		if !e.challenge.Open() {
			g := c.GainPerWindow * (1 - a/c.ConsistentBelow) * (1 - e.risk)
			g = math.Min(g, math.Min(e.allowance, MaxTrust-e.trust))
			if g > 0 {
				e.allowance -= g
				e.trust += g
				e.ledger.addGain(g)
				e.changed = true
			}
		}
		if e.risk *= 0.5; e.risk < 0.01 {
			e.risk = 0
		}
		return windowConsistent
	case sustained > c.LossAbove:
		e.consistent = 0
		loss := c.MaxBehaviourLoss * c.severity(sustained) * (1 + c.ContextAmplify*e.risk) * fresh
		e.lose(Reason{Signal: SignalBehaviour, Impact: -loss, Text: behaviourText(source, s)})
		e.settle(at)
		return windowDeviating
	}
	return windowNeutral
}

// severity maps an anomaly to the share of MaxBehaviourLoss it costs: 0 at LossAbove and below,
// rising linearly to 1 at anomaly 1.
func (c *TrustConfig) severity(a float64) float64 {
	if a <= c.LossAbove {
		return 0
	}
	return (a - c.LossAbove) / (1 - c.LossAbove)
}

// contextSignal is a context rule that fired, with its severity in (0, 1].
type contextSignal struct {
	signal   Signal
	severity float64
	text     string
}

// context applies the context rules that fired for one context event.
func (e *engine) context(at time.Time, sigs []contextSignal) {
	if e.revoked || len(sigs) == 0 {
		return
	}
	c := &e.cfg.Context
	for _, s := range sigs {
		var base float64
		switch s.signal {
		case SignalImpossibleTravel:
			base = c.ImpossibleTravelLoss
		case SignalNewDevice:
			base = c.NewDeviceLoss
		case SignalNewNetwork:
			base = c.NewNetworkLoss
		case SignalUnusualHour:
			base = c.UnusualHourLoss
		}
		e.lose(Reason{Signal: s.signal, Impact: -base * s.severity, Text: s.text})
		e.risk = math.Max(e.risk, s.severity)
	}
	e.consistent = 0
	e.settle(at)
}

// lose takes r's loss (capped at the trust left) and records r.
func (e *engine) lose(r Reason) {
	r.Impact = -math.Min(-r.Impact, e.trust)
	e.trust += r.Impact
	e.ledger.add(r)
	e.changed = true
}

// settle moves the session to the tier its trust calls for: a challenge when trust falls into
// a challenge band (a stronger one if a weaker one is open), revocation below TerminateBelow.
func (e *engine) settle(at time.Time) {
	if e.revoked {
		return
	}
	want := e.band()
	if want == TierTerminate {
		e.revoke(at)
		return
	}
	if want >= TierSoft && (!e.challenge.Open() || e.challenge.Tier < want) {
		e.issue(at, want)
	}
}

func (e *engine) issue(at time.Time, tier Tier) Challenge {
	timeout := e.cfg.Tiers.SoftTimeout
	if tier == TierHard {
		timeout = e.cfg.Tiers.HardTimeout
	}
	e.lastID++
	e.challenge = Challenge{ID: e.lastID, Tier: tier, Issued: at, Deadline: at.Add(timeout)}
	e.emit(TransitionChallengeIssued, at, e.challenge.ID)
	return e.challenge
}

func (e *engine) revoke(at time.Time) {
	e.revoked = true
	e.trust = 0
	e.challenge = Challenge{}
	e.emit(TransitionRevoked, at, 0)
}

// emit records a transition from the tier of the previous one to the current tier.
func (e *engine) emit(kind TransitionKind, at time.Time, challenge uint64) {
	e.changed = true
	to := e.tier()
	e.out = append(e.out, Transition{Kind: kind, At: at, From: e.shown, To: to, Trust: roundTrust(e.trust), Challenge: challenge})
	e.shown = to
}

// roundTrust rounds to hundredths, so that statuses and the audit log show readable numbers.
func roundTrust(v float64) float64 { return math.Round(v*100) / 100 }

func tierWord(t Tier) string {
	if t == TierHard {
		return "hard"
	}
	return "soft"
}

// String describes the engine's state for tests and debugging.
func (e *engine) String() string {
	return fmt.Sprintf("trust %.2f tier %v challenge %+v risk %.2f", e.trust, e.tier(), e.challenge, e.risk)
}
