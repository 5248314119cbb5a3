package guard

import (
	"context"
	"fmt"
	"math"
	"strconv"
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
	// Whole numbers, unless trust below its minimum would not print below it: then one or two
	// decimals, less trailing zeros, or every digit.
	n := 0
	if d.Trust < d.Required {
		for n = 0; n <= 2; n++ {
			t, _ := strconv.ParseFloat(fmt.Sprintf("%.*f", n, d.Trust), 64)
			r, _ := strconv.ParseFloat(fmt.Sprintf("%.*f", n, d.Required), 64)
			if t < r {
				break
			}
		}
	}
	points := func(v float64) string {
		switch {
		case n > 2:
			return strconv.FormatFloat(v, 'f', -1, 64)
		case n > 0:
			return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.*f", n, v), "0"), ".")
		}
		return fmt.Sprintf("%.0f", v)
	}
	switch d.Outcome {
	case OutcomeAllowed:
		fmt.Fprintf(&b, "trust %s meets the %s required", points(d.Trust), points(d.Required))
	case OutcomeLowTrust:
		fmt.Fprintf(&b, "trust %s is below the %s required", points(d.Trust), points(d.Required))
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
		for _, trust := range []float64{0, 49.5, 50.5, 60.45, 60.46, 60.499, 87.49, 100, -1, math.NaN()} {
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
	d = Decision{Outcome: OutcomeLowTrust, Session: "s", Resource: "r", Tier: TierMonitor, Trust: 62.45, Required: 62.5, Reasons: reasons[1:3]}
	if n := testing.AllocsPerRun(100, func() { _ = d.Explain() }); n > 1 {
		t.Errorf("Explain of a near miss allocates %.0f times, want 1", n)
	}
}

// TestExplainNeverContradictsItself: the numbers an explanation gives stand in the order its
// words say. Whole numbers read "trust 85 is below the 85 required" of 84.6 and 85, and "trust
// 62 is below the 62 required" of 62.4 and 62.5 (a review).
func TestExplainNeverContradictsItself(t *testing.T) {
	for _, c := range []struct {
		trust, required float64
		want            string
	}{
		{84.6, 85, "trust 84.6 is below the 85 required"},
		{62.4, 62.5, "trust 62.4 is below the 62.5 required"},
		{62.49, 62.5, "trust 62.49 is below the 62.5 required"},
		{62.5, 62.51, "trust 62 is below the 63 required"},
		{62.504, 62.505, "trust 62.5 is below the 62.51 required"},
		{62.501, 62.504, "trust 62.501 is below the 62.504 required"},
		{80, 85, "trust 80 is below the 85 required"},
		{84.4, 85, "trust 84 is below the 85 required"},
		{85.4, 85, "trust 85 meets the 85 required"},
		{62.5, 62.5, "trust 62 meets the 62 required"},
		{90, 85, "trust 90 meets the 85 required"},
	} {
		d := Decision{Session: "s", Resource: "r", Tier: TierMonitor, Trust: c.trust, Required: c.required, Outcome: OutcomeLowTrust}
		if c.trust >= c.required {
			d.Allow, d.Outcome = true, OutcomeAllowed
		}
		if got := d.Explain(); !strings.Contains(got, ": "+c.want+" (tier") {
			t.Errorf("trust %v, required %v: %q, want %q", c.trust, c.required, got, c.want)
		}
	}
	// Every trust a status shows (hundredths) against minimums a policy can give.
	for _, required := range []float64{0, 0.001, 33.333, 50, 62.5, 62.505, 84.995, 85, 99.99, 100} {
		for i := 0; i <= 10000; i++ {
			d := Decision{Session: "s", Resource: "r", Tier: TierMonitor, Trust: float64(i) / 100, Required: required, Outcome: OutcomeLowTrust}
			if d.Trust >= required {
				d.Allow, d.Outcome = true, OutcomeAllowed
			}
			var trust, req float64
			var word string
			e := d.Explain()
			if _, err := fmt.Sscanf(e[strings.Index(e, "trust "):], "trust %g %s", &trust, &word); err != nil {
				t.Fatalf("%q: %v", e, err)
			}
			rest := e[strings.Index(e, " the ")+len(" the "):]
			if _, err := fmt.Sscanf(rest, "%g required", &req); err != nil {
				t.Fatalf("%q: %v", e, err)
			}
			if (trust < req) != (d.Trust < required) || (word == "is") != !d.Allow {
				t.Fatalf("trust %v, required %v: %q", d.Trust, required, e)
			}
		}
	}
	// Reasons give a trust as statuses do.
	g, err := New(Config{Trust: TrustConfig{InitialTrust: 84.6, EstablishedTrust: 90}}, mustPolicy(t, "billing 85\n"))
	if err != nil {
		t.Fatal(err)
	}
	must(t)(g.OpenSession("s", "alice", time.Now()))
	d := g.Authorize(context.Background(), "s", "billing")
	if want := "denied billing for session s: trust 84.6 is below the 85 required (tier monitor); signals: session opened at trust 84.6 ("; !strings.HasPrefix(d.Explain(), want) {
		t.Errorf("%q, want it to start %q", d.Explain(), want)
	}
}
