package guard

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// explainFmt is Explain as it was written with fmt, the reference for the strconv version.
func explainFmt(d *Decision) string {
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
		if r.Impact == 0 {
			b.WriteString(r.Text)
		} else {
			fmt.Fprintf(&b, "%s (%+.0f)", r.Text, r.Impact)
		}
	}
	return b.String()
}

func TestExplainMatchesFmt(t *testing.T) {
	issued := time.Date(2026, 3, 4, 5, 6, 7, 8, time.FixedZone("x", 3600))
	var reasons []Reason
	for _, v := range []float64{0, 12.5, 13.5, -0.4, 0.4, -7.6, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), 1e21} {
		reasons = append(reasons, Reason{Signal: SignalBehaviour, Impact: v, Text: "hold time of e +3.0σ"})
	}
	for o := Outcome(0); o <= OutcomeCancelled+1; o++ {
		for _, trust := range []float64{0, 49.5, 50.5, 87.49, 100, -1, math.NaN()} {
			for _, n := range []int{0, 1, len(reasons)} {
				d := Decision{Allow: o == OutcomeAllowed, Outcome: o, Session: "s-1", Resource: "transfer", Tier: Tier(o % 5),
					Trust: trust, Required: 60.5, Challenge: Challenge{Tier: TierHard, Issued: issued}, Reasons: reasons[:n]}
				if got, want := d.Explain(), explainFmt(&d); got != want {
					t.Errorf("Explain() = %q, want %q", got, want)
				}
			}
		}
	}
	for _, r := range reasons {
		want := r.Text
		if r.Impact != 0 {
			want = fmt.Sprintf("%s (%+.0f)", r.Text, r.Impact)
		}
		if got := r.String(); got != want {
			t.Errorf("Reason.String() = %q, want %q", got, want)
		}
	}
	d := Decision{Allow: true, Outcome: OutcomeAllowed, Session: "s", Resource: "r", Tier: TierMonitor, Trust: 87, Required: 60, Reasons: reasons[1:3]}
	if n := testing.AllocsPerRun(100, func() { _ = d.Explain() }); n > 1 {
		t.Errorf("Explain allocates %.0f times, want 1", n)
	}
}
