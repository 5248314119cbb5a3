package siem

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
)

// TestLiveEventMatchesTheLog: a decision exported live carries the metadata.uid of the same
// decision read back from the audit log, also when its names are not UTF-8 or too long for the
// log, and its reasons move trust by fractions or beyond the trust scale, which the log fits.
func TestLiveEventMatchesTheLog(t *testing.T) {
	signer, _, err := audit.GenerateMLDSA65(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))
	long := string(bytes.Repeat([]byte("ü"), audit.MaxNameBytes))
	for _, d := range []guard.Decision{
		{At: at, Session: "s1", User: "alice", Resource: "transfer", Allow: true, Trust: 91.25, Required: 60},
		{At: at, Session: "bad\xffsession", User: "b\xfeob", Resource: long, Trust: 84.6, Required: 85,
			Reasons: []guard.Reason{{Impact: 122.37, Text: "behaviour consistent"}, {Impact: -0.005, Text: "t\xffext"}}},
		{At: at, Session: long, User: long, Resource: "", Reasons: []guard.Reason{{Impact: -250}}},
	} {
		var buf bytes.Buffer
		log, err := audit.New(&buf, audit.Head{}, audit.Config{Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := log.AppendDecision(at, d.AuditRecord()); err != nil {
			t.Fatalf("the log refused decision %q: %v", d.Session, err)
		}
		rec, err := audit.DecodeRecord(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
		if err != nil {
			t.Fatal(err)
		}
		live := FromDecision(Source{}, auditDecision(&d), 0).Metadata.UID
		if logged := FromDecision(Source{}, *rec.Decision, 0).Metadata.UID; live != logged {
			t.Errorf("decision %q: live uid %s, from the log %s", d.Session, live, logged)
		}
	}
}
