package audit_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/audit"
)

func Example() {
	seed := sha256.Sum256([]byte("example key; use GenerateMLDSA65 for a real one"))
	signer, err := audit.NewMLDSA65Signer(seed[:])
	if err != nil {
		panic(err)
	}
	var file bytes.Buffer
	log, err := audit.New(&file, audit.Head{}, audit.Config{Signer: signer})
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 3, 4, 3, 0, 0, 0, time.UTC)
	log.AppendDecision(now, audit.Decision{
		At: now, Session: "s-42", Resource: "billing", Allow: false,
		Outcome: "low_trust", Tier: "terminate", Trust: 0, Required: 85,
		Reasons: []audit.Reason{{Signal: "impossible_travel", Impact: -60, Text: "Chicago to Warsaw, 7,487 km in 4h0m"}},
	})
	log.Close(now) // signs the tail

	report, err := audit.Verify(&file, signer.Public())
	fmt.Println(report.Decisions, report.Checkpoints, report.Unsigned(), err)
	// Output: 1 1 1 <nil>
}
