package siem

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
)

const testToken = "11111111-2222-3333-4444-555555555555"

// testConfig points an exporter at both collectors, with quick retries.
func testConfig(t testing.TB, dir string, pki *testPKI, hec *hecCollector, sys *syslogCollector) Config {
	cfg := Config{Dir: dir, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, BatchEvents: 50,
		Source: Source{Version: "test", Service: "bank", Host: "host-1"}}
	if hec != nil {
		cfg.HEC = &HECConfig{URL: hec.url(), Token: testToken, RootCAs: pki.pool, Timeout: 2 * time.Second}
	}
	if sys != nil {
		cfg.Syslog = &SyslogConfig{Addr: sys.addr, RootCAs: pki.pool, Confirm: 100 * time.Millisecond, Timeout: 2 * time.Second}
	}
	return cfg
}

func record(e *Exporter, ds []guard.Decision, ts []guard.Transition) {
	for i := range ds {
		e.RecordDecision(ds[i])
		e.RecordTransition(ts[i])
	}
}

// TestExportEveryDecisionArrives sends decisions and changes of standing to a local HTTPS
// collector and a syslog-over-TLS listener: every one arrives at both, at least once, and
// every event satisfies the OCSF rules.
func TestExportEveryDecisionArrives(t *testing.T) {
	pki := newTestPKI(t)
	hec, sys := newHECCollector(t, pki, testToken), newSyslogCollector(t, pki)
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, t.TempDir(), pki, hec, sys)
	cfg.Registerer = reg
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stop := runExporter(t, e)
	ds, ts, uids := testDecisions(300, time.Now())
	record(e, ds, ts)
	hec.got.waitAll(uids, 20*time.Second)
	sys.got.waitAll(uids, 20*time.Second)
	// A batch counts as sent once its response is read, a moment after the collector has it.
	for deadline := time.Now().Add(10 * time.Second); value(e.m.sent.WithLabelValues("hec")) < 600 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if got := value(e.m.queued); got != 600 {
		t.Errorf("vigil_siem_queued_total = %v, want 600", got)
	}
	if got := value(e.m.sent.WithLabelValues("hec")); got < 600 {
		t.Errorf("vigil_siem_sent_total{sink=hec} = %v, want at least 600", got)
	}
	if e.Dropped() != 0 {
		t.Errorf("%d dropped", e.Dropped())
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	for _, n := range []string{"vigil_siem_queued_total", "vigil_siem_sent_total", "vigil_siem_send_failures_total",
		"vigil_siem_dropped_total", "vigil_siem_spool_bytes", "vigil_siem_pending_bytes", "vigil_siem_spooled_total"} {
		if !names[n] {
			t.Errorf("metric %s not registered", n)
		}
	}
	// A denied decision arrives as a Detection Finding naming the resource.
	d := FromDecision(Source{}, auditDecision(&ds[0]), 0)
	if ev := hec.got.events[d.Metadata.UID]; ev.ClassUID != ClassDetectionFinding || ev.Resources[0].Name != "transfer" ||
		ev.Unmapped.Vigil.Outcome != "low_trust" || ev.Metadata.Product.Version != "test" {
		t.Errorf("denied decision arrived as %+v", ev)
	}
}

// TestExportSurvivesCollectorOutage stops both collectors while decisions keep coming, starts
// them again on the same addresses, and checks that nothing was lost.
func TestExportSurvivesCollectorOutage(t *testing.T) {
	pki := newTestPKI(t)
	hec, sys := newHECCollector(t, pki, testToken), newSyslogCollector(t, pki)
	e, err := New(testConfig(t, t.TempDir(), pki, hec, sys))
	if err != nil {
		t.Fatal(err)
	}
	runExporter(t, e)
	ds, ts, uids := testDecisions(400, time.Now())
	record(e, ds[:100], ts[:100])
	hec.got.waitAll(uids[:200], 20*time.Second)
	sys.got.waitAll(uids[:200], 20*time.Second)

	hec.stop()
	sys.stop()
	record(e, ds[100:300], ts[100:300])
	// Failing deliveries and reconnects meanwhile: the collectors stay down at least 300 ms,
	// and until a failed delivery was counted (a loaded machine may not schedule the exporter
	// within a fixed time).
	outage := time.Now()
	for deadline := outage.Add(20 * time.Second); value(e.m.failed.WithLabelValues("hec")) == 0 || time.Since(outage) < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no failed HEC delivery counted during the outage")
		}
	}
	hec.start()
	sys.start()
	record(e, ds[300:], ts[300:])
	hec.got.waitAll(uids, 30*time.Second)
	sys.got.waitAll(uids, 30*time.Second)
	if got := value(e.m.failed.WithLabelValues("hec")); got == 0 {
		t.Error("no failed HEC delivery counted during the outage")
	}
	if u, total := sys.got.count(); u != len(uids) {
		t.Errorf("syslog: %d unique events (%d with duplicates), want %d", u, total, len(uids))
	}
}

// TestExportSurvivesRestart closes the exporter while the collectors are down, opens a new one
// on the same spool directory, and checks that everything queued before arrives.
func TestExportSurvivesRestart(t *testing.T) {
	pki := newTestPKI(t)
	hec, sys := newHECCollector(t, pki, testToken), newSyslogCollector(t, pki)
	dir := t.TempDir()
	ds, ts, uids := testDecisions(200, time.Now())

	e1, err := New(testConfig(t, dir, pki, hec, sys))
	if err != nil {
		t.Fatal(err)
	}
	stop1 := runExporter(t, e1)
	record(e1, ds[:50], ts[:50])
	hec.got.waitAll(uids[:100], 20*time.Second)
	sys.got.waitAll(uids[:100], 20*time.Second)
	hec.stop()
	sys.stop()
	record(e1, ds[50:150], ts[50:150])
	time.Sleep(100 * time.Millisecond)
	stop1() // the agent stops with events spooled but not delivered

	e2, err := New(testConfig(t, dir, pki, hec, sys))
	if err != nil {
		t.Fatal(err)
	}
	runExporter(t, e2)
	record(e2, ds[150:], ts[150:])
	hec.start()
	sys.start()
	hec.got.waitAll(uids, 30*time.Second)
	sys.got.waitAll(uids, 30*time.Second)
}

// TestQueueFullGapArrives fills the queue while nothing drains it: Enqueue drops and counts,
// and once the exporter runs a gap finding with the count reaches the collector.
func TestQueueFullGapArrives(t *testing.T) {
	pki := newTestPKI(t)
	hec := newHECCollector(t, pki, testToken)
	cfg := testConfig(t, t.TempDir(), pki, hec, nil)
	cfg.QueueSize = 10
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ds, ts, uids := testDecisions(15, time.Now())
	record(e, ds, ts) // 30 entries into a queue of 10
	if e.Dropped() != 20 || value(e.m.dropped[DropQueueFull]) != 20 {
		t.Fatalf("dropped %d, want 20", e.Dropped())
	}
	runExporter(t, e)
	hec.got.waitAll(uids[:10], 20*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var gap uint64
		hec.got.mu.Lock()
		for _, ev := range hec.got.events {
			if ev.Unmapped != nil && ev.Unmapped.Vigil.Kind == "gap" {
				gap += ev.Unmapped.Vigil.Dropped
			}
		}
		hec.got.mu.Unlock()
		if gap == 20 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gap findings report %d lost, want 20", gap)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDeliverReplaysAuditRecords spools records of a decision log and delivers them with
// Deliver, which returns once the collector has everything.
func TestDeliverReplaysAuditRecords(t *testing.T) {
	pki := newTestPKI(t)
	hec := newHECCollector(t, pki, testToken)
	e, err := New(testConfig(t, t.TempDir(), pki, hec, nil))
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	var uids []string
	for i := range 20 {
		d := audit.Decision{At: testAt.Add(time.Duration(i)), Session: "s", Resource: "r", Allow: true, Outcome: "allowed", Tier: "monitor"}
		recs = append(recs, audit.Record{Seq: uint64(i + 1), Kind: audit.KindDecision, Decision: &d})
		uids = append(uids, FromDecision(Source{}, d, uint64(i+1)).Metadata.UID)
	}
	recs = append(recs, audit.Record{Seq: 21, Kind: audit.KindCheckpoint, Checkpoint: &audit.Checkpoint{}})
	if n, err := e.AppendRecords(recs); err != nil || n != 20 {
		t.Fatalf("AppendRecords = %d, %v", n, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	hec.got.waitAll(uids, time.Second)
	if ev := hec.got.events[uids[3]]; ev.Metadata.Sequence != 4 {
		t.Errorf("metadata.sequence %d, want the audit record's 4", ev.Metadata.Sequence)
	}
}

// TestDeliverStopsOnARefusal: Deliver, asked to finish, stops at once with the collector's
// answer when retrying cannot help (a token the collector refuses), instead of waiting out its
// context; a busy collector (503, 429) is still retried until the context ends.
func TestDeliverStopsOnARefusal(t *testing.T) {
	for _, tc := range []struct {
		status  int32
		refused bool
	}{
		{http.StatusForbidden, true},
		{http.StatusUnauthorized, true},
		{http.StatusTooManyRequests, false},
		{http.StatusServiceUnavailable, false},
	} {
		t.Run(http.StatusText(int(tc.status)), func(t *testing.T) {
			pki := newTestPKI(t)
			hec := newHECCollector(t, pki, testToken)
			hec.refuse.Store(tc.status)
			e, err := New(testConfig(t, t.TempDir(), pki, hec, nil))
			if err != nil {
				t.Fatal(err)
			}
			d := audit.Decision{At: testAt, Session: "s", Resource: "r", Allow: true, Outcome: "allowed", Tier: "monitor"}
			if _, err := e.AppendRecords([]audit.Record{{Seq: 1, Kind: audit.KindDecision, Decision: &d}}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err = e.Deliver(ctx)
			var de *DeliveryError
			switch {
			case tc.refused && (!errors.As(err, &de) || de.Status != int(tc.status) || ctx.Err() != nil):
				t.Fatalf("Deliver: %v (context %v), want the collector's %d at once", err, ctx.Err(), tc.status)
			case !tc.refused && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("Deliver: %v, want it retried until the context ended", err)
			}
			t.Logf("Deliver: %v", err)
		})
	}
}

// TestHECRefusesWrongCA checks that a collector whose certificate the configured CA did not
// sign gets nothing: deliveries fail and are counted.
func TestHECRefusesWrongCA(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	hec := newHECCollector(t, pki, testToken)
	cfg := testConfig(t, t.TempDir(), other, hec, nil)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runExporter(t, e)
	ds, ts, _ := testDecisions(1, time.Now())
	record(e, ds, ts)
	deadline := time.Now().Add(10 * time.Second)
	for value(e.m.failed.WithLabelValues("hec")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no failure counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if u, _ := hec.got.count(); u != 0 {
		t.Fatalf("collector with an unknown certificate received %d events", u)
	}
	if _, err := os.Stat(cfg.Dir); err != nil {
		t.Fatal(err)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestHECRefusalsAreRetried has the collector refuse with 503 (busy) and then 403 (a token it
// does not know yet): nothing is acknowledged meanwhile, failures are counted, and once it
// accepts, everything arrives.
func TestHECRefusalsAreRetried(t *testing.T) {
	pki := newTestPKI(t)
	hec := newHECCollector(t, pki, testToken)
	e, err := New(testConfig(t, t.TempDir(), pki, hec, nil))
	if err != nil {
		t.Fatal(err)
	}
	runExporter(t, e)
	ds, ts, uids := testDecisions(50, time.Now())
	for _, code := range []int32{http.StatusServiceUnavailable, http.StatusForbidden} {
		hec.refuse.Store(code)
		before := value(e.m.failed.WithLabelValues("hec"))
		record(e, ds[:25], ts[:25])
		deadline := time.Now().Add(10 * time.Second)
		for value(e.m.failed.WithLabelValues("hec")) < before+2 {
			if time.Now().After(deadline) {
				t.Fatalf("status %d: no failures counted", code)
			}
			time.Sleep(10 * time.Millisecond)
		}
		if acked := e.spool.Cursor("hec").Acked(); acked != 0 {
			t.Fatalf("status %d: offset %d acknowledged though the collector refused", code, acked)
		}
	}
	hec.refuse.Store(0)
	record(e, ds[25:], ts[25:])
	hec.got.waitAll(uids, 20*time.Second)
}

// TestSpoolFullIsCountedAndReported fills a small spool while the collector is down: the
// events that do not fit are dropped with reason spool_full, and once the collector is back a
// gap finding with their count arrives after the events that were spooled.
func TestSpoolFullIsCountedAndReported(t *testing.T) {
	pki := newTestPKI(t)
	hec := newHECCollector(t, pki, testToken)
	hec.stop()
	cfg := testConfig(t, t.TempDir(), pki, hec, nil)
	cfg.SegmentBytes, cfg.MaxSpoolBytes = MinSegmentBytes, 2*MinSegmentBytes
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	runExporter(t, e)
	ds, ts, _ := testDecisions(600, time.Now()) // about 1 KiB each: more than 512 KiB
	for i := range ds {
		for len(e.ch) > cap(e.ch)/2 { // never let the queue drop: only the spool may
			time.Sleep(time.Millisecond)
		}
		e.RecordDecision(ds[i])
		e.RecordTransition(ts[i])
	}
	deadline := time.Now().Add(20 * time.Second)
	for value(e.m.dropped[DropSpoolFull]) == 0 || len(e.ch) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spool of %d bytes never overflowed (%v bytes held)", cfg.MaxSpoolBytes, value(e.m.spoolBytes))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if held := value(e.m.spoolBytes); held > float64(cfg.MaxSpoolBytes) {
		t.Fatalf("spool holds %v bytes, bound %d", held, cfg.MaxSpoolBytes)
	}
	if value(e.m.dropped[DropQueueFull]) != 0 {
		t.Fatal("the queue dropped; the test wants only the spool to")
	}
	hec.start()
	deadline = time.Now().Add(30 * time.Second)
	for {
		var gap uint64
		delivered := 0
		hec.got.mu.Lock()
		for _, ev := range hec.got.events {
			if ev.Unmapped != nil && ev.Unmapped.Vigil.Kind == "gap" {
				gap += ev.Unmapped.Vigil.Dropped
			} else {
				delivered++
			}
		}
		hec.got.mu.Unlock()
		dropped := uint64(value(e.m.dropped[DropSpoolFull]))
		if gap == dropped && gap > 0 && delivered+int(gap) == 1200 {
			return // every one of the 1,200 entries either arrived or is reported lost
		}
		if time.Now().After(deadline) {
			t.Fatalf("gap findings report %d lost, the exporter counted %d, %d delivered; want 1,200 in all", gap, dropped, delivered)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSyslogMutualTLS has the receiver require a client certificate: without one nothing
// arrives and failures are counted; with one everything arrives. A receiver whose certificate
// the configured CA did not sign gets nothing.
func TestSyslogMutualTLS(t *testing.T) {
	pki, other := newTestPKI(t), newTestPKI(t)
	sys := newSyslogCollector(t, pki)
	sys.stop()
	sys.mutual = true
	sys.start()
	ds, ts, uids := testDecisions(20, time.Now())
	for _, tc := range []struct {
		name    string
		roots   *testPKI
		certs   []tls.Certificate
		arrives bool
	}{
		{"no client certificate", pki, nil, false},
		{"receiver from another CA", other, []tls.Certificate{pki.client}, false},
		{"client certificate", pki, []tls.Certificate{pki.client}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir(), tc.roots, nil, sys)
			cfg.Syslog.Certificates = tc.certs
			e, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			stop := runExporter(t, e)
			defer stop()
			record(e, ds, ts)
			if tc.arrives {
				sys.got.waitAll(uids, 20*time.Second)
				return
			}
			deadline := time.Now().Add(10 * time.Second)
			for value(e.m.failed.WithLabelValues("syslog")) < 2 {
				if time.Now().After(deadline) {
					t.Fatal("no failures counted")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if u, _ := sys.got.count(); u != 0 {
				t.Fatalf("%d events arrived", u)
			}
			if e.spool.Cursor("syslog").Acked() != 0 {
				t.Fatal("events acknowledged that never arrived")
			}
		})
	}
}
