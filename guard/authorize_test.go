package guard

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAuthorizeFailsClosed(t *testing.T) {
	r := newRig(t, Config{})
	g := r.g
	t0 := tEvent
	r.clock.Set(t0)
	must(t)(g.OpenSession("fresh", "alice", t0))   // a new user: trust 70
	must(t)(g.OpenSession("low", "bob", t0))       // brought into a soft challenge
	must(t)(g.OpenSession("revoked", "carol", t0)) // terminated
	must(t)(g.ObserveBehaviour("low", t0.Add(time.Second), 0.8, []Deviation{{Feature: "hold time of e", Z: 3}}))
	must(t)(g.Feedback("revoked", VerdictCompromised, t0.Add(time.Second)))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	cases := []struct {
		name              string
		ctx               context.Context
		now               time.Time
		session, resource string
		allow             bool
		outcome           Outcome
		tier              Tier
		explain           string
	}{
		{"allowed at the minimum", context.Background(), t0, "fresh", "profile.edit", true, OutcomeAllowed, TierMonitor, "meets the 70 required"},
		{"below the minimum", context.Background(), t0, "fresh", "billing", false, OutcomeLowTrust, TierMonitor, "below the 85 required"},
		{"unknown resource", context.Background(), t0, "fresh", "admin.delete-all", false, OutcomeUnknownResource, TierMonitor, "does not name"},
		{"unknown session", context.Background(), t0, "ghost", "docs.read", false, OutcomeUnknownSession, TierNone, "no such session"},
		{"empty session", context.Background(), t0, "", "docs.read", false, OutcomeUnknownSession, TierNone, "no such session"},
		{"revoked session", context.Background(), t0, "revoked", "docs.read", false, OutcomeRevoked, TierTerminate, "terminated"},
		{"challenged, resource within reach", context.Background(), t0.Add(time.Minute), "low", "docs.read", true, OutcomeAllowed, TierSoft, "meets"},
		{"challenge overdue, not yet ticked", context.Background(), t0.Add(time.Hour), "low", "docs.read", false, OutcomeChallengeOverdue, TierSoft, "went unanswered"},
		{"cancelled request", cancelled, t0, "fresh", "docs.read", false, OutcomeCancelled, TierMonitor, "cancelled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.clock.Set(c.now)
			d := g.Authorize(c.ctx, c.session, c.resource)
			if d.Allow != c.allow || d.Outcome != c.outcome || d.Tier != c.tier {
				t.Fatalf("%s", d.Explain())
			}
			if !strings.Contains(d.Explain(), c.explain) {
				t.Fatalf("explanation %q lacks %q", d.Explain(), c.explain)
			}
			if len(d.Reasons) == 0 {
				t.Fatal("a decision without reasons")
			}
			if last := r.rec.decisions[len(r.rec.decisions)-1]; last.Outcome != c.outcome || last.Resource != c.resource {
				t.Fatalf("recorded %+v", last)
			}
		})
	}
	// The low-trust session's reasons name the deviating feature.
	d := g.Authorize(context.Background(), "low", "billing")
	if !strings.Contains(d.Explain(), "hold time of e +3.0σ") {
		t.Fatalf("explanation does not name the deviating feature: %s", d.Explain())
	}
	// Tick escalates the overdue challenge; the session is then in a hard challenge.
	g.Tick(t0.Add(time.Hour))
	if st, _ := g.Status("low"); st.Tier != TierHard {
		t.Fatalf("after Tick: %v", st.Tier)
	}
}

// TestAuthorizeDoesNotAllocate checks the zero-allocation requirement on every path,
// with the audit queue as recorder. (BenchmarkAuthorize measures the time.)
func TestAuthorizeDoesNotAllocate(t *testing.T) {
	q := NewAuditQueue(16) // small: most records are dropped, which must not allocate either
	g, err := New(Config{Recorder: q}, mustPolicy(t, testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	must(t)(g.OpenSession("s", "alice", now))
	must(t)(g.ObserveBehaviour("s", now, 0.7, []Deviation{{Feature: "hold time of e", Z: 2}}))
	ctx := context.Background()
	for _, c := range []struct{ session, resource string }{
		{"s", "docs.read"}, {"s", "billing"}, {"s", "unknown"}, {"ghost", "docs.read"},
	} {
		if n := testing.AllocsPerRun(1000, func() { g.Authorize(ctx, c.session, c.resource) }); n != 0 {
			t.Errorf("Authorize(%q, %q): %v allocations", c.session, c.resource, n)
		}
	}
	if q.Dropped() == 0 {
		t.Error("the test meant to overflow the queue")
	}
}

// TestAuthorizeNeverWaitsForScoring holds a session's scoring lock, as a slow scorer would,
// and checks that Authorize still answers.
func TestAuthorizeNeverWaitsForScoring(t *testing.T) {
	r := newRig(t, Config{})
	r.clock.Set(tEvent)
	must(t)(r.g.OpenSession("s", "alice", tEvent))
	s, _ := r.g.lookup("s")
	s.mu.Lock()
	s.user.mu.Lock()
	done := make(chan Decision)
	go func() { done <- r.g.Authorize(context.Background(), "s", "docs.read") }()
	select {
	case d := <-done:
		if !d.Allow {
			t.Fatalf("%s", d.Explain())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Authorize waited for the scoring path")
	}
	s.user.mu.Unlock()
	s.mu.Unlock()
}
