package siem

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
)

// BenchmarkEnqueueStalledCollector measures what recording a decision costs the caller (the
// guard's Authorize) while the collector accepts connections but never answers: the spool
// writer keeps spooling, the sender waits, and Enqueue must neither block nor allocate. The
// dropped/op metric is the share of entries the queue had no room for (each counted and
// reported by a gap finding).
func BenchmarkEnqueueStalledCollector(b *testing.B) {
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // stalled
	}))
	srv.TLS = nil
	srv.StartTLS()
	defer srv.Close()
	defer close(release)
	newExporter := func(b *testing.B) *Exporter {
		cfg := Config{Dir: b.TempDir(), HEC: &HECConfig{URL: srv.URL, Token: testToken,
			RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs, Timeout: time.Hour},
			Source: Source{Version: "bench"}}
		e, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	d := guard.Decision{Allow: false, Outcome: guard.OutcomeLowTrust, Session: "s1", User: "alice", Resource: "transfer",
		Tier: guard.TierSoft, Trust: 40, Required: 70, At: time.Now(),
		Reasons: []guard.Reason{{Signal: guard.SignalBehaviour, Impact: -30, Text: "typing unlike the owner's"}}}
	// The accepted path alone: the queue is emptied, off the clock, whenever it is full.
	b.Run("queue_has_room", func(b *testing.B) {
		e := newExporter(b)
		defer e.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if len(e.ch) == cap(e.ch) {
				b.StopTimer()
				for len(e.ch) > 0 {
					<-e.ch
				}
				b.StartTimer()
			}
			e.RecordDecision(d)
		}
		b.StopTimer()
		b.ReportMetric(float64(e.Dropped())/float64(b.N), "dropped/op")
	})
	// The real exporter behind the stalled collector: the spool writer encodes and fsyncs
	// batches far slower than this loop records, so most entries meet a full queue and are
	// counted as dropped (the cheap path).
	b.Run("spooling", func(b *testing.B) {
		e := newExporter(b)
		stop := runExporter(b, e)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			e.RecordDecision(d)
		}
		b.StopTimer()
		b.ReportMetric(float64(e.Dropped())/float64(b.N), "dropped/op")
		stop()
	})
}

// BenchmarkSpoolThroughput measures what the spool writer sustains: encoding a batch of 500
// decisions as OCSF and appending it with one fsync. Its events/s is the rate above which a
// steady stream of decisions starts to overflow the queue.
func BenchmarkSpoolThroughput(b *testing.B) {
	e, err := New(Config{Dir: b.TempDir(), HEC: &HECConfig{URL: "https://127.0.0.1:1", Token: "t"}, QueueSize: 500})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	d := guard.Decision{Allow: false, Outcome: guard.OutcomeLowTrust, Session: "s1", User: "alice", Resource: "transfer",
		Tier: guard.TierSoft, Trust: 40, Required: 70, At: time.Now(),
		Reasons: []guard.Reason{{Signal: guard.SignalBehaviour, Impact: -30, Text: "typing unlike the owner's"}}}
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for range 500 {
			e.RecordDecision(d)
		}
		if buf, err = e.writeBatch(buf[:0], nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(500*b.N)/b.Elapsed().Seconds(), "events/s")
	if e.Dropped() != 0 {
		b.Fatalf("%d dropped", e.Dropped())
	}
}
