package siem

import (
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
)

// TestTeeReachesBothWithoutAllocating checks that the audit queue and the exporter behind a
// Tee both receive a decision, and that recording allocates nothing.
func TestTeeReachesBothWithoutAllocating(t *testing.T) {
	q := guard.NewAuditQueue(8)
	e, err := New(Config{Dir: t.TempDir(), HEC: &HECConfig{URL: "https://127.0.0.1:1", Token: "t"}, QueueSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec := Tee(q, e)
	d := guard.Decision{Allow: true, Outcome: guard.OutcomeAllowed, Session: "s", Resource: "r", At: time.Now()}
	rec.RecordDecision(d)
	rec.RecordTransition(guard.Transition{Kind: guard.TransitionOpened, Session: "s", At: time.Now()})
	if len(e.ch) != 2 || q.Dropped() != 0 {
		t.Fatalf("exporter has %d entries, queue dropped %d", len(e.ch), q.Dropped())
	}
	if allocs := testing.AllocsPerRun(100, func() { rec.RecordDecision(d) }); allocs != 0 {
		t.Fatalf("RecordDecision through Tee allocates %v times", allocs)
	}
}
