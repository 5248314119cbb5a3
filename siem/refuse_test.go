package siem

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
)

// TestDeliverRefusedHECLeavesSyslog: Deliver stopping at HEC's refusal lets syslog deliver and
// confirm everything, so that the next Deliver sends syslog nothing twice (found by a review).
func TestDeliverRefusedHECLeavesSyslog(t *testing.T) {
	pki := newTestPKI(t)
	hec, sys := newHECCollector(t, pki, testToken), newSyslogCollector(t, pki)
	hec.refuse.Store(http.StatusForbidden)
	dir := t.TempDir()
	e, err := New(testConfig(t, dir, pki, hec, sys))
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	for i := 1; i <= 300; i++ {
		d := audit.Decision{At: testAt, Session: "s", Resource: "r", Allow: true, Outcome: "allowed", Tier: "monitor"}
		recs = append(recs, audit.Record{Seq: uint64(i), Kind: audit.KindDecision, Decision: &d})
	}
	if _, err := e.AppendRecords(recs); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	err = e.Deliver(ctx)
	t.Logf("first Deliver after %v: %v", time.Since(start), err)
	time.Sleep(200 * time.Millisecond)
	u1, tot1 := sys.got.count()
	t.Logf("syslog after first Deliver: unique %d total %d", u1, tot1)

	hec.refuse.Store(0)
	e2, err := New(testConfig(t, dir, pki, hec, sys))
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := e2.Deliver(ctx2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	u, tot := sys.got.count()
	t.Logf("syslog after second Deliver: unique %d total %d", u, tot)
	if tot != u {
		t.Errorf("syslog received %d events %d times: the refusal at HEC cut syslog's confirmation short", u, tot)
	}
	if u1 != 300 {
		t.Errorf("first Deliver stopped syslog after %d of 300 events", u1)
	}
}
