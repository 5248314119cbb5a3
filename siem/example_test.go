package siem_test

import (
	"fmt"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/siem"
)

// A denied decision becomes a Detection Finding; encoded, it satisfies the OCSF rules.
func ExampleFromDecision() {
	d := audit.Decision{At: time.Date(2026, 12, 3, 9, 30, 0, 0, time.UTC), Session: "s-alice", User: "alice",
		Resource: "transfer", Outcome: "low_trust", Tier: "soft_challenge", Trust: 38, Required: 70,
		Reasons: []audit.Reason{{Signal: "behaviour", Impact: -42, Text: "typing unlike alice's"}}}
	ev := siem.FromDecision(siem.Source{Version: "1.0.0", Service: "bank"}, d, 0)
	line, _ := siem.AppendEvent(nil, &ev)
	fmt.Println(ev.ClassName, ev.TypeUID, ev.Severity)
	fmt.Println(ev.FindingInfo.Title)
	fmt.Println(siem.Validate(line))
	// Output:
	// Detection Finding 200401 Medium
	// Vigil denied transfer: low_trust
	// <nil>
}
