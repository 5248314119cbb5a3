package guard

import (
	"context"
	"math"
	"strconv"
	"time"
)

// Outcome says why Authorize allowed or denied.
type Outcome uint8

// Outcomes. Only OutcomeAllowed allows.
const (
	OutcomeAllowed          Outcome = iota + 1
	OutcomeLowTrust                 // trust below the resource's minimum
	OutcomeRevoked                  // the session was terminated
	OutcomeChallengeOverdue         // a challenge passed its deadline unanswered
	OutcomeUnknownSession           // no open session has this ID
	OutcomeUnknownResource          // the policy does not name the resource
	OutcomeCancelled                // the caller's context was done
)

var outcomeNames = [...]string{
	OutcomeAllowed:          "allowed",
	OutcomeLowTrust:         "low_trust",
	OutcomeRevoked:          "revoked",
	OutcomeChallengeOverdue: "challenge_overdue",
	OutcomeUnknownSession:   "unknown_session",
	OutcomeUnknownResource:  "unknown_resource",
	OutcomeCancelled:        "cancelled",
}

// String returns the outcome's stable name, as the audit log records it.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) && outcomeNames[o] != "" {
		return outcomeNames[o]
	}
	return "unknown"
}

// Decision is Authorize's answer.
type Decision struct {
	Allow    bool
	Outcome  Outcome
	Session  string
	User     string
	Resource string
	Tier     Tier
	Trust    float64
	// Required is the resource's minimum trust; 0 if the policy does not name it.
	Required float64
	// Challenge is the session's open challenge, if any: a denied caller can put it to the
	// user and retry once it is passed.
	Challenge Challenge
	At        time.Time
	// Reasons are the top signals behind the session's trust, strongest first. They are shared
	// with the session's status: read, never modify.
	Reasons []Reason
}

// Explain describes the decision in plain words. It allocates (the string, once); Authorize
// never calls it.
func (d *Decision) Explain() string {
	return string(d.appendExplain(make([]byte, 0, 256)))
}

// appendExplain appends Explain's words to b, with strconv rather than fmt: the agent explains
// every decision it answers over its API.
func (d *Decision) appendExplain(b []byte) []byte {
	if d.Allow {
		b = append(b, "allowed "...)
	} else {
		b = append(b, "denied "...)
	}
	b = append(append(append(append(b, d.Resource...), " for session "...), d.Session...), ": "...)
	switch d.Outcome {
	case OutcomeAllowed, OutcomeLowTrust:
		verb := " meets the "
		if d.Outcome == OutcomeLowTrust {
			verb = " is below the "
		}
		n := trustDecimals(d.Trust, d.Required)
		b = appendTrust(append(b, "trust "...), d.Trust, n)
		b = appendTrust(append(b, verb...), d.Required, n)
		b = append(b, " required"...)
	case OutcomeRevoked:
		b = append(b, "the session was terminated"...)
	case OutcomeChallengeOverdue:
		b = append(append(append(b, "the "...), tierWord(d.Challenge.Tier)...), " challenge issued "...)
		b = append(d.Challenge.Issued.AppendFormat(b, time.RFC3339), " went unanswered"...)
	case OutcomeUnknownSession:
		b = append(b, "no such session"...)
	case OutcomeUnknownResource:
		b = append(b, "the policy does not name this resource"...)
	case OutcomeCancelled:
		b = append(b, "the request was cancelled"...)
	}
	b = append(append(append(b, " (tier "...), d.Tier.String()...), ')')
	for i, r := range d.Reasons {
		if i == 0 {
			b = append(b, "; signals: "...)
		} else {
			b = append(b, "; "...)
		}
		b = r.appendString(b)
	}
	return b
}

// trustDecimals returns how many decimals trust and required need for an explanation to put
// them in the order they are in: none, unless they round to the same whole number or the wrong
// way round (trust 84.6 "is below the 85 required" read "trust 85 is below the 85 required"),
// then one or two, and -1 (as many as it takes) if two are not enough. Rounding never puts a
// trust that meets its minimum below it.
func trustDecimals(trust, required float64) int {
	if !(trust < required) {
		return 0
	}
	var tb, rb [32]byte
	for n := 0; n <= 2; n++ {
		// The buffers stay on the stack: ParseFloat keeps no reference to its argument.
		t, terr := strconv.ParseFloat(string(strconv.AppendFloat(tb[:0], trust, 'f', n, 64)), 64)
		r, rerr := strconv.ParseFloat(string(strconv.AppendFloat(rb[:0], required, 'f', n, 64)), 64)
		if terr == nil && rerr == nil && t < r {
			return n
		}
	}
	return -1
}

// appendTrust appends v with n decimals (-1: as many as it takes), less trailing zeros.
func appendTrust(b []byte, v float64, n int) []byte {
	b = strconv.AppendFloat(b, v, 'f', n, 64)
	if n <= 0 {
		return b
	}
	for b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	if b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	return b
}

// trustText is a trust as a reason's text gives it: to two decimals, less trailing zeros, as
// statuses round it.
func trustText(v float64) string { return string(appendTrust(make([]byte, 0, 8), v, 2)) }

// appendPoints appends v as fmt's %.0f does, or %+.0f if signed.
func appendPoints(b []byte, v float64, signed bool) []byte {
	if signed && !math.Signbit(v) && !math.IsInf(v, 1) {
		b = append(b, '+')
	}
	return strconv.AppendFloat(b, v, 'f', 0, 64)
}

// Authorize decides whether session may use resource now. It reads the status the scoring path
// last published and the policy, never waits for the scoring path, and does not allocate. It
// fails closed: an unknown session or resource, a revoked session, an overdue challenge or a
// cancelled ctx deny. Every decision goes to the Recorder.
func (g *Guard) Authorize(ctx context.Context, session, resource string) Decision {
	d := Decision{Session: session, Resource: resource, At: g.cfg.Clock()}
	s := (*g.index.Load())[session]
	if s == nil {
		d.Outcome, d.Tier, d.Reasons = OutcomeUnknownSession, TierNone, g.unknownSession
		g.recordDecision(d)
		return d
	}
	st := s.snap.Load()
	d.User, d.Tier, d.Trust, d.Challenge, d.Reasons = st.User, st.Tier, st.Trust, st.Challenge, st.Reasons
	min, known := g.policy.Load().min[resource]
	d.Required = min
	switch {
	case ctx.Err() != nil:
		d.Outcome = OutcomeCancelled
	case st.Revoked:
		d.Outcome = OutcomeRevoked
	case !known:
		d.Outcome = OutcomeUnknownResource
	case st.Challenge.Open() && d.At.After(st.Challenge.Deadline):
		d.Outcome = OutcomeChallengeOverdue
	case st.Trust < min:
		d.Outcome = OutcomeLowTrust
	default:
		d.Allow, d.Outcome = true, OutcomeAllowed
	}
	g.recordDecision(d)
	return d
}

func (g *Guard) recordDecision(d Decision) {
	if g.cfg.Recorder != nil {
		g.cfg.Recorder.RecordDecision(d)
	}
}
