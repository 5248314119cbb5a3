package siem

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
)

var testAt = time.Date(2026, 12, 3, 9, 30, 0, 123456789, time.UTC)

// TestMappingSatisfiesSchema maps every outcome and every session event the guard records, and
// gaps, and checks each event against the OCSF rules and the mapping the package documents.
func TestMappingSatisfiesSchema(t *testing.T) {
	rs := []audit.Reason{{Signal: "impossible_travel", Impact: -40, Text: "the session moved 900 km in 5 minutes"}}
	decision := func(allow bool, outcome string, user string) Event {
		return FromDecision(Source{Version: "1.2.3", Service: "bank", Host: "laptop-7"}, audit.Decision{At: testAt, Session: "s1", User: user,
			Resource: "transfer", Allow: allow, Outcome: outcome, Tier: "monitor", Trust: 42, Required: 70, Reasons: rs}, 17)
	}
	session := func(event string) Event {
		return FromSession(Source{}, audit.SessionEvent{At: testAt, Session: "s1", User: "alice", Event: event,
			From: "monitor", To: "soft_challenge", Trust: 35, Challenge: 3, Reasons: rs}, 0)
	}
	tests := []struct {
		name               string
		ev                 Event
		class, activity    int
		severity, statusID int
	}{
		{"allowed", decision(true, "allowed", "alice"), ClassAuthentication, AuthOther, SeverityInformational, StatusSuccess},
		{"low trust", decision(false, "low_trust", "alice"), ClassDetectionFinding, FindingCreate, SeverityMedium, FindingStatusNew},
		{"revoked", decision(false, "revoked", "alice"), ClassDetectionFinding, FindingCreate, SeverityHigh, FindingStatusNew},
		{"challenge overdue", decision(false, "challenge_overdue", "alice"), ClassDetectionFinding, FindingCreate, SeverityMedium, FindingStatusNew},
		{"unknown session", decision(false, "unknown_session", ""), ClassDetectionFinding, FindingCreate, SeverityLow, FindingStatusNew},
		{"unknown resource", decision(false, "unknown_resource", "alice"), ClassDetectionFinding, FindingCreate, SeverityLow, FindingStatusNew},
		{"cancelled", decision(false, "cancelled", "alice"), ClassDetectionFinding, FindingCreate, SeverityInformational, FindingStatusNew},
		{"allowed, no user", decision(true, "allowed", ""), ClassAuthentication, AuthOther, SeverityInformational, StatusSuccess},
		{"opened", session("opened"), ClassAuthentication, AuthLogon, SeverityInformational, StatusSuccess},
		{"closed", session("closed"), ClassAuthentication, AuthLogoff, SeverityInformational, StatusSuccess},
		{"revoked session", session("revoked"), ClassAuthentication, AuthLogoff, SeverityHigh, StatusFailure},
		{"challenge issued", session("challenge_issued"), ClassAuthentication, AuthOther, SeverityLow, StatusOther},
		{"challenge passed", session("challenge_passed"), ClassAuthentication, AuthOther, SeverityInformational, StatusSuccess},
		{"challenge failed", session("challenge_failed"), ClassAuthentication, AuthOther, SeverityMedium, StatusFailure},
		{"challenge expired", session("challenge_expired"), ClassAuthentication, AuthOther, SeverityMedium, StatusFailure},
		{"feedback genuine", session("feedback_genuine"), ClassAuthentication, AuthOther, SeverityInformational, StatusSuccess},
		{"feedback compromised", session("feedback_compromised"), ClassAuthentication, AuthOther, SeverityHigh, StatusFailure},
		{"unknown event", session("something_new"), ClassAuthentication, AuthOther, SeverityLow, StatusOther},
		{"gap", FromGap(Source{}, testAt, 12, "siem exporter", 0), ClassDetectionFinding, FindingCreate, SeverityHigh, FindingStatusNew},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, err := AppendEvent(nil, &tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if err := Validate(line); err != nil {
				t.Fatalf("%v\n%s", err, line)
			}
			ev := tc.ev
			if ev.ClassUID != tc.class || ev.ActivityID != tc.activity || ev.SeverityID != tc.severity || ev.StatusID != tc.statusID {
				t.Errorf("class %d activity %d severity %d status %d, want %d %d %d %d", ev.ClassUID, ev.ActivityID,
					ev.SeverityID, ev.StatusID, tc.class, tc.activity, tc.severity, tc.statusID)
			}
			if ev.Time != testAt.UnixMilli() || ev.Metadata.Version != OCSFVersion || len(ev.Metadata.UID) != 32 {
				t.Errorf("time %d, metadata %+v", ev.Time, ev.Metadata)
			}
		})
	}
}

// TestEventUIDStable checks that the same entry always gets the same metadata.uid (so a
// collector can drop duplicates) and that different entries, or different records of a log,
// get different ones.
func TestEventUIDStable(t *testing.T) {
	d := audit.Decision{At: testAt, Session: "s1", User: "alice", Resource: "transfer", Outcome: "low_trust", Tier: "monitor", Trust: 40}
	a, b := FromDecision(Source{}, d, 0), FromDecision(Source{Version: "other", Host: "h"}, d, 0)
	if a.Metadata.UID != b.Metadata.UID {
		t.Fatalf("uid depends on the source: %s %s", a.Metadata.UID, b.Metadata.UID)
	}
	if r1, r2 := FromDecision(Source{}, d, 1), FromDecision(Source{}, d, 2); r1.Metadata.UID == r2.Metadata.UID {
		t.Fatal("two log records with the same fields share a uid")
	}
	d.At = d.At.Add(time.Nanosecond)
	if c := FromDecision(Source{}, d, 0); c.Metadata.UID == a.Metadata.UID {
		t.Fatal("two decisions a nanosecond apart share a uid")
	}
	la, _ := AppendEvent(nil, &a)
	la2, _ := AppendEvent(nil, &a)
	if string(la) != string(la2) {
		t.Fatal("encoding is not deterministic")
	}
}

// TestFromRecord maps the records of a real decision log, checkpoints skipped.
func TestFromRecord(t *testing.T) {
	tests := []struct {
		rec   audit.Record
		ok    bool
		class int
	}{
		{audit.Record{Seq: 1, Kind: audit.KindDecision, Decision: &audit.Decision{At: testAt, Session: "s", Resource: "r", Allow: true, Outcome: "allowed", Tier: "monitor"}}, true, ClassAuthentication},
		{audit.Record{Seq: 2, Kind: audit.KindSession, Session: &audit.SessionEvent{At: testAt, Session: "s", Event: "revoked", From: "hard_challenge", To: "terminate"}}, true, ClassAuthentication},
		{audit.Record{Seq: 3, Time: testAt, Kind: audit.KindGap, Gap: &audit.Gap{Dropped: 4}}, true, ClassDetectionFinding},
		{audit.Record{Seq: 4, Kind: audit.KindCheckpoint, Checkpoint: &audit.Checkpoint{}}, false, 0},
	}
	for _, tc := range tests {
		ev, ok := FromRecord(Source{}, tc.rec)
		if ok != tc.ok || ev.ClassUID != tc.class {
			t.Errorf("record %d: ok %v class %d, want %v %d", tc.rec.Seq, ok, ev.ClassUID, tc.ok, tc.class)
		}
		if ok && ev.Metadata.Sequence != tc.rec.Seq {
			t.Errorf("record %d: metadata.sequence %d", tc.rec.Seq, ev.Metadata.Sequence)
		}
	}
}

// TestValidateRejects removes or breaks each thing the rules require and checks that Validate
// names it.
func TestValidateRejects(t *testing.T) {
	auth := FromSession(Source{}, audit.SessionEvent{At: testAt, Session: "s", User: "u", Event: "opened", From: "none", To: "monitor"}, 0)
	find := FromDecision(Source{}, audit.Decision{At: testAt, Session: "s", Resource: "r", Outcome: "low_trust", Tier: "monitor"}, 0)
	tests := []struct {
		name  string
		ev    Event
		edit  func(m map[string]any)
		wants string
	}{
		{"no class", auth, func(m map[string]any) { delete(m, "class_uid") }, "class_uid"},
		{"no category", auth, func(m map[string]any) { delete(m, "category_uid") }, "category_uid"},
		{"no time", auth, func(m map[string]any) { delete(m, "time") }, "time"},
		{"no severity", auth, func(m map[string]any) { delete(m, "severity_id") }, "severity_id"},
		{"no activity", auth, func(m map[string]any) { delete(m, "activity_id") }, "activity_id"},
		{"no type", auth, func(m map[string]any) { delete(m, "type_uid") }, "type_uid"},
		{"no status", auth, func(m map[string]any) { delete(m, "status_id") }, "status_id"},
		{"wrong type", auth, func(m map[string]any) { m["type_uid"] = 300202 }, "type_uid"},
		{"bad severity", auth, func(m map[string]any) { m["severity_id"] = 7 }, "severity_id"},
		{"severity not an integer", find, func(m map[string]any) { m["severity_id"] = json.Number("43e24") }, "severity_id"},
		{"status not an integer", find, func(m map[string]any) { m["status_id"] = 1.5 }, "status_id"},
		{"bad status", auth, func(m map[string]any) { m["status_id"] = 3 }, "status_id 3"},
		{"bad finding status", find, func(m map[string]any) { m["status_id"] = 7 }, "status_id 7"},
		{"bad activity", auth, func(m map[string]any) { m["activity_id"], m["type_uid"] = 42, 300242 }, "activity_id"},
		{"no metadata", auth, func(m map[string]any) { delete(m, "metadata") }, "metadata"},
		{"no metadata.version", auth, func(m map[string]any) { delete(m["metadata"].(map[string]any), "version") }, "metadata.version"},
		{"old version", auth, func(m map[string]any) { m["metadata"].(map[string]any)["version"] = "0.99.0" }, "metadata.version"},
		{"no vendor", auth, func(m map[string]any) {
			delete(m["metadata"].(map[string]any)["product"].(map[string]any), "vendor_name")
		}, "vendor_name"},
		{"no product name", auth, func(m map[string]any) {
			delete(m["metadata"].(map[string]any)["product"].(map[string]any), "name")
		}, "metadata.product.name"},
		{"no user", auth, func(m map[string]any) { delete(m, "user") }, "user"},
		{"empty user", auth, func(m map[string]any) { m["user"] = map[string]any{"type_id": 1} }, "user.name"},
		{"no service", auth, func(m map[string]any) { delete(m, "service") }, "service, dst_endpoint"},
		{"no finding_info", find, func(m map[string]any) { delete(m, "finding_info") }, "finding_info"},
		{"no finding uid", find, func(m map[string]any) { delete(m["finding_info"].(map[string]any), "uid") }, "finding_info.uid"},
		{"no finding title", find, func(m map[string]any) { delete(m["finding_info"].(map[string]any), "title") }, "finding_info.title"},
		{"other class", auth, func(m map[string]any) { m["class_uid"] = 1001 }, "class_uid 1001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line, _ := AppendEvent(nil, &tc.ev)
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatal(err)
			}
			tc.edit(m)
			broken, _ := json.Marshal(m)
			err := Validate(broken)
			if !errors.Is(err, ErrInvalidEvent) || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("Validate = %v, want ErrInvalidEvent naming %q", err, tc.wants)
			}
		})
	}
}

// TestAppendEventTooLarge checks the size cap.
func TestAppendEventTooLarge(t *testing.T) {
	ev := FromGap(Source{Host: strings.Repeat("h", MaxEventBytes)}, testAt, 1, "x", 0)
	if _, err := AppendEvent(nil, &ev); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("AppendEvent = %v, want ErrTooLarge", err)
	}
}

// TestEventOf reads events back as the HEC sender wraps them, and bare, and refuses envelopes
// that are not HEC's.
func TestEventOf(t *testing.T) {
	gap := FromGap(Source{Host: "h"}, time.Now(), 3, "test", 0)
	event, _ := AppendEvent(nil, &gap)
	event = bytes.TrimSuffix(event, []byte{'\n'})
	h := &hecSender{cfg: &HECConfig{SourceType: "ocsf"}, source: Source{Host: "h"}}
	posted, err := h.body(append(bytes.Clone(event), '\n'))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		line      string
		event     string // "" when refused
		enveloped bool
	}{
		{"bare", string(event), string(event), false},
		{"as the sender posts it", string(bytes.TrimSuffix(posted, []byte{'\n'})), string(event), true},
		{"time as a string", `{"time":"1764000000.5","event":` + string(event) + `}`, string(event), true},
		{"no time", `{"sourcetype":"ocsf","event":` + string(event) + `}`, string(event), true},
		{"event not an object", `{"time":1764000000,"event":"text"}`, "", true},
		{"event null", `{"time":1764000000,"event":null}`, "", true},
		{"time not a number", `{"time":"yesterday","event":` + string(event) + `}`, "", true},
		{"time zero", `{"time":0,"event":` + string(event) + `}`, "", true},
		{"time NaN", `{"time":"NaN","event":` + string(event) + `}`, "", true},
		{"time Inf", `{"time":"+Inf","event":` + string(event) + `}`, "", true},
		{"time in hex", `{"time":"0x1p30","event":` + string(event) + `}`, "", true},
		{"time negative", `{"time":-5,"event":` + string(event) + `}`, "", true},
		{"time half quoted", `{"time":"1764000000,"event":` + string(event) + `}`, "", false},
		{"time as an integer", `{"time":1764000000,"event":` + string(event) + `}`, string(event), true},
		{"time with an exponent", `{"time":1.764e9,"event":` + string(event) + `}`, string(event), true},
		{"time under a second", `{"time":0.5,"event":` + string(event) + `}`, string(event), true},
		{"time in nanoseconds", `{"time":1764000000.123456789123,"event":` + string(event) + `}`, string(event), true},
		{"time in milliseconds", `{"time":1764000000123,"event":` + string(event) + `}`, "", true},
		{"time with a leading zero", `{"time":"01764000000","event":` + string(event) + `}`, "", true},
		{"not JSON", `{"time":`, "", false},
	} {
		got, enveloped, err := EventOf([]byte(tc.line))
		switch {
		case tc.event == "" && !errors.Is(err, ErrInvalidEvent):
			t.Errorf("%s: %v, want ErrInvalidEvent", tc.name, err)
		case tc.event != "" && (err != nil || string(got) != tc.event || enveloped != tc.enveloped):
			t.Errorf("%s: %q, enveloped %v, %v; want the event, enveloped %v", tc.name, got, enveloped, err, tc.enveloped)
		case tc.event != "":
			if err := Validate(got); err != nil {
				t.Errorf("%s: the event read back: %v", tc.name, err)
			}
		}
	}
}
