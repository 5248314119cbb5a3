package guard

import (
	"context"
	"fmt"
	"strings"
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

// Explain describes the decision in plain words. It allocates; Authorize never calls it.
func (d *Decision) Explain() string {
	var b strings.Builder
	verb := "denied"
	if d.Allow {
		verb = "allowed"
	}
	fmt.Fprintf(&b, "%s %s for session %s: ", verb, d.Resource, d.Session)
	switch d.Outcome {
	case OutcomeAllowed:
		fmt.Fprintf(&b, "trust %.0f meets the %.0f required", d.Trust, d.Required)
	case OutcomeLowTrust:
		fmt.Fprintf(&b, "trust %.0f is below the %.0f required", d.Trust, d.Required)
	case OutcomeRevoked:
		b.WriteString("the session was terminated")
	case OutcomeChallengeOverdue:
		fmt.Fprintf(&b, "the %s challenge issued %s went unanswered", tierWord(d.Challenge.Tier), d.Challenge.Issued.Format(time.RFC3339))
	case OutcomeUnknownSession:
		b.WriteString("no such session")
	case OutcomeUnknownResource:
		b.WriteString("the policy does not name this resource")
	case OutcomeCancelled:
		b.WriteString("the request was cancelled")
	}
	fmt.Fprintf(&b, " (tier %v)", d.Tier)
	for i, r := range d.Reasons {
		if i == 0 {
			b.WriteString("; signals: ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(r.String())
	}
	return b.String()
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
