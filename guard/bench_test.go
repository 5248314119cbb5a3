package guard

import (
	"context"
	"io"
	"sort"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
)

// benchGuard returns a guard with one scored session and, if recorder is set, an AuditQueue
// drained by a goroutine into a real signed log (written to io.Discard) while the benchmark
// runs, as in production.
func benchGuard(b *testing.B, withAudit bool) (*Guard, func()) {
	b.Helper()
	cfg := Config{}
	stop := func() {}
	if withAudit {
		q := NewAuditQueue(0)
		signer, _, err := audit.GenerateMLDSA65(nil)
		if err != nil {
			b.Fatal(err)
		}
		log, err := audit.New(io.Discard, audit.Head{}, audit.Config{Signer: signer})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- q.Run(ctx, log, time.Second) }()
		cfg.Recorder = q
		stop = func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
			b.ReportMetric(float64(q.Dropped()), "dropped")
		}
	}
	g, err := New(cfg, mustPolicy(b, testPolicy))
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	if _, err := g.OpenSession("s-bench", "alice", now); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		g.ObserveBehaviour("s-bench", now, 0.1, []Deviation{{Feature: "hold time of e", Z: 0.4}})
	}
	return g, stop
}

// BenchmarkAuthorize measures one Authorize call: the target is at most 1 µs and zero
// allocations.
func BenchmarkAuthorize(b *testing.B) {
	for _, bc := range []struct {
		name      string
		withAudit bool
		session   string
		resource  string
	}{
		{"allowed", false, "s-bench", "docs.read"},
		{"denied-low-trust", false, "s-bench", "billing"},
		{"unknown-session", false, "s-none", "billing"},
		{"unknown-resource", false, "s-bench", "admin"},
		{"allowed+audit", true, "s-bench", "docs.read"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g, stop := benchGuard(b, bc.withAudit)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				g.Authorize(ctx, bc.session, bc.resource)
			}
			b.StopTimer()
			stop()
		})
	}
}

// BenchmarkAuthorizeParallel measures Authorize from all cores at once, while the scoring path
// keeps publishing new statuses for the same session.
func BenchmarkAuthorizeParallel(b *testing.B) {
	g, stop := benchGuard(b, true)
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		at := time.Now()
		for ctx.Err() == nil {
			at = at.Add(time.Millisecond)
			g.ObserveBehaviour("s-bench", at, 0.2, nil)
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Authorize(ctx, "s-bench", "docs.read")
		}
	})
}

// BenchmarkEventToTrust measures the scoring path: from an event handed to the guard to the
// updated status published, reporting the latency distribution (p50, p99, max). "behaviour"
// feeds already-scored windows through ObserveBehaviour; "context" evaluates the context rules.
// BenchmarkKeystrokeToTrust (realtyping_bench_test.go) measures keystrokes scored by the real
// models.
func BenchmarkEventToTrust(b *testing.B) {
	b.Run("behaviour", func(b *testing.B) {
		g, _ := benchGuard(b, false)
		devs := []Deviation{{Feature: "hold time of e", Z: 2.5}, {Feature: "latency from t to h", Z: -1.5}}
		at := time.Now()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			at = at.Add(time.Microsecond)
			a := 0.1
			if i%50 == 49 {
				a = 0.65 // now and then a window that costs trust and is explained
			}
			t0 := time.Now()
			_, err := g.ObserveBehaviour("s-bench", at, a, devs)
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if i%50 == 49 {
				g.Feedback("s-bench", VerdictGenuine, at) // keep the session out of challenges
			}
		}
		reportLatency(b, "", lat)
	})
	b.Run("context", func(b *testing.B) {
		g, _ := benchGuard(b, false)
		at := time.Now()
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			at = at.Add(time.Microsecond)
			t0 := time.Now()
			_, err := g.ObserveContext(contextAt("s-bench", placeChicago, "laptop", "office", at))
			lat = append(lat, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
		}
		reportLatency(b, "", lat)
	})
}

func reportLatency(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1000 }
	b.ReportMetric(q(0.5), prefix+"p50-µs")
	b.ReportMetric(q(0.99), prefix+"p99-µs")
	if prefix == "" {
		b.ReportMetric(q(1), "max-µs")
	}
}

// BenchmarkAuditQueue measures handing a decision to the audit queue and writing it to a signed
// log, end to end: records per second through one writer goroutine.
func BenchmarkAuditQueue(b *testing.B) {
	signer, _, err := audit.GenerateMLDSA65(nil)
	if err != nil {
		b.Fatal(err)
	}
	log, err := audit.New(io.Discard, audit.Head{}, audit.Config{Signer: signer})
	if err != nil {
		b.Fatal(err)
	}
	q := NewAuditQueue(1 << 16)
	d := Decision{Allow: true, Outcome: OutcomeAllowed, Session: "s", Resource: "docs.read", Tier: TierMonitor, Trust: 90, Required: 50,
		At: time.Now(), Reasons: []Reason{{Signal: SignalBehaviour, Impact: 12, Text: "behaviour consistent with this user's baseline in 9 windows"}}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.RecordDecision(d)
		if i%1024 == 1023 {
			if err := q.Drain(log, d.At); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := q.Drain(log, d.At); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	if q.Dropped() != 0 {
		b.Fatalf("dropped %d", q.Dropped())
	}
}
