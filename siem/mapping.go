package siem

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/vigilauth/vigil/audit"
)

// Source names who produced the events.
type Source struct {
	// Version is Vigil's version, metadata.product.version (default "dev").
	Version string
	// Service is the application whose sessions the guard watches, service.name of
	// Authentication events (default "vigil").
	Service string
	// Host names the device or server running the guard; optional, under unmapped.vigil.host.
	Host string
}

func (s Source) withDefaults() Source {
	if s.Version == "" {
		s.Version = "dev"
	}
	if s.Service == "" {
		s.Service = "vigil"
	}
	return s
}

// uidDomain separates event IDs from any other hash of the same fields.
const uidDomain = "vigil/siem/event/v1\n"

// eventUID derives an entry's metadata.uid from the fields that identify it, so a resent event
// keeps its ID. seq, the audit record's sequence number when the entry comes from a log, is
// part of it: records of one log are distinct even when their fields are not.
func eventUID(kind string, at time.Time, seq uint64, parts ...string) string {
	h := sha256.New()
	h.Write([]byte(uidDomain))
	h.Write([]byte(kind))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(at.UnixNano()))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], seq)
	h.Write(b[:])
	for _, p := range parts {
		binary.BigEndian.PutUint64(b[:], uint64(len(p)))
		h.Write(b[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func base(src Source, class, activity int, activityName string, at time.Time, uid string, seq uint64) Event {
	e := Event{ActivityID: activity, ActivityName: activityName, ClassUID: class, TypeUID: class*100 + activity,
		Time: at.UnixMilli(), Metadata: Metadata{
			Product: Product{Name: "Vigil", VendorName: "Vigil", Version: src.Version},
			Version: OCSFVersion, UID: uid, LogName: "vigil.decisions", Sequence: seq,
		}}
	switch class {
	case ClassAuthentication:
		e.CategoryUID, e.CategoryName, e.ClassName = CategoryIAM, "Identity & Access Management", "Authentication"
	case ClassDetectionFinding:
		e.CategoryUID, e.CategoryName, e.ClassName = CategoryFindings, "Findings", "Detection Finding"
	}
	e.TypeName = e.ClassName + ": " + activityName
	return e
}

func (e *Event) setSeverity(id int) { e.SeverityID, e.Severity = id, severityName(id) }

func user(name string) *User {
	if name == "" {
		// Authentication requires a user; a decision for an unknown session has none.
		return &User{Name: "unknown", TypeID: 0}
	}
	return &User{Name: name, UID: name, TypeID: 1}
}

func reasons(rs []audit.Reason) []Reason {
	if len(rs) == 0 {
		return nil
	}
	out := make([]Reason, len(rs))
	for i, r := range rs {
		out[i] = Reason(r)
	}
	return out
}

func reasonText(rs []audit.Reason) string {
	texts := make([]string, 0, len(rs))
	for _, r := range rs {
		texts = append(texts, r.Text)
	}
	return strings.Join(texts, "; ")
}

// FromDecision maps an Authorize decision. An allowed decision is an Authentication event
// (activity Other, "Continuous Authentication": the session was still its owner's); a denied
// one is a Detection Finding whose severity follows the outcome. seq is the decision's audit
// log record, or 0 if unknown.
func FromDecision(src Source, d audit.Decision, seq uint64) Event {
	src = src.withDefaults()
	at := d.At.UTC()
	uid := eventUID("decision", at, seq, d.Session, d.Resource, d.Outcome)
	trust := d.Trust
	det := Details{Kind: string(audit.KindDecision), Outcome: d.Outcome, Tier: d.Tier, Trust: &trust,
		Required: d.Required, Host: src.Host, Reasons: reasons(d.Reasons)}
	if d.Allow {
		e := base(src, ClassAuthentication, AuthOther, "Continuous Authentication", at, uid, seq)
		e.setSeverity(SeverityInformational)
		e.StatusID, e.Status, e.StatusDetail = StatusSuccess, "Success", d.Outcome
		e.Message = fmt.Sprintf("allowed %s for session %s: trust %.0f, required %.0f", d.Resource, d.Session, d.Trust, d.Required)
		e.User, e.Service, e.Session = user(d.User), &Service{Name: src.Service}, &Session{UID: d.Session}
		e.Metadata.CorrelationUID = d.Session
		e.Unmapped = &Unmapped{Vigil: det}
		return e
	}
	e := base(src, ClassDetectionFinding, FindingCreate, "Create", at, uid, seq)
	sev := SeverityMedium
	switch d.Outcome {
	case "revoked":
		sev = SeverityHigh
	case "unknown_session", "unknown_resource":
		sev = SeverityLow
	case "cancelled":
		sev = SeverityInformational
	}
	e.setSeverity(sev)
	e.StatusID, e.Status, e.StatusDetail = FindingStatusNew, "New", d.Outcome
	title := fmt.Sprintf("Vigil denied %s: %s", d.Resource, d.Outcome)
	e.Message = fmt.Sprintf("denied %s for session %s (user %q): %s, trust %.0f, required %.0f", d.Resource, d.Session, d.User, d.Outcome, d.Trust, d.Required)
	e.FindingInfo = &FindingInfo{UID: uid, Title: title, Desc: reasonText(d.Reasons), Types: []string{d.Outcome}}
	e.Resources = []Resource{{Name: d.Resource, Type: "resource"}}
	alert := d.Outcome != "cancelled"
	e.IsAlert = &alert
	risk := int(audit.MaxTrust - d.Trust + 0.5)
	e.RiskScore = &risk
	e.Metadata.CorrelationUID = d.Session
	e.Unmapped = &Unmapped{Vigil: det}
	return e
}

// sessionActivity is how a change of standing maps onto Authentication.
type sessionActivity struct {
	activity int
	name     string
	status   int
	severity int
	mfa      bool // the event is the outcome of a step-up challenge
}

func sessionMapping(event string) sessionActivity {
	switch event {
	case "opened":
		return sessionActivity{AuthLogon, "Logon", StatusSuccess, SeverityInformational, false}
	case "closed":
		return sessionActivity{AuthLogoff, "Logoff", StatusSuccess, SeverityInformational, false}
	case "revoked":
		return sessionActivity{AuthLogoff, "Logoff", StatusFailure, SeverityHigh, false}
	case "challenge_issued":
		return sessionActivity{AuthOther, "Step-up Challenge", StatusOther, SeverityLow, true}
	case "challenge_passed":
		return sessionActivity{AuthOther, "Step-up Challenge", StatusSuccess, SeverityInformational, true}
	case "challenge_failed", "challenge_expired":
		return sessionActivity{AuthOther, "Step-up Challenge", StatusFailure, SeverityMedium, true}
	case "feedback_genuine":
		return sessionActivity{AuthOther, "Analyst Feedback", StatusSuccess, SeverityInformational, false}
	case "feedback_compromised":
		return sessionActivity{AuthOther, "Analyst Feedback", StatusFailure, SeverityHigh, false}
	}
	return sessionActivity{AuthOther, "Session Change", StatusOther, SeverityLow, false}
}

func statusName(id int) string {
	switch id {
	case StatusSuccess:
		return "Success"
	case StatusFailure:
		return "Failure"
	}
	return "Other"
}

// FromSession maps a change in a session's standing to an Authentication event: opened is a
// Logon, closed and revoked are a Logoff (revoked failing, at High severity), challenges and
// analyst feedback are Vigil's own activities. seq is the audit log record, or 0 if unknown.
func FromSession(src Source, s audit.SessionEvent, seq uint64) Event {
	src = src.withDefaults()
	at := s.At.UTC()
	m := sessionMapping(s.Event)
	uid := eventUID("session", at, seq, s.Session, s.Event, fmt.Sprint(s.Challenge))
	e := base(src, ClassAuthentication, m.activity, m.name, at, uid, seq)
	e.setSeverity(m.severity)
	e.StatusID, e.Status, e.StatusDetail = m.status, statusName(m.status), s.Event
	e.Message = fmt.Sprintf("session %s (user %q): %s, %s -> %s, trust %.0f", s.Session, s.User, s.Event, s.From, s.To, s.Trust)
	e.User, e.Service, e.Session = user(s.User), &Service{Name: src.Service}, &Session{UID: s.Session}
	if m.mfa {
		mfa := true
		e.IsMFA = &mfa
	}
	trust := s.Trust
	e.Metadata.CorrelationUID = s.Session
	e.Unmapped = &Unmapped{Vigil: Details{Kind: string(audit.KindSession), Event: s.Event, From: s.From, To: s.To,
		Trust: &trust, Challenge: s.Challenge, Host: src.Host, Reasons: reasons(s.Reasons)}}
	return e
}

// FromGap maps a loss, dropped entries that never reached the SIEM (or the audit log), to a
// High-severity Detection Finding, so the loss is visible where the events were expected.
// where names the place they were lost ("audit log", "siem queue", "siem spool").
func FromGap(src Source, at time.Time, dropped uint64, where string, seq uint64) Event {
	src = src.withDefaults()
	at = at.UTC()
	uid := eventUID("gap", at, seq, where, fmt.Sprint(dropped))
	e := base(src, ClassDetectionFinding, FindingCreate, "Create", at, uid, seq)
	e.setSeverity(SeverityHigh)
	e.StatusID, e.Status, e.StatusDetail = FindingStatusNew, "New", "gap"
	title := fmt.Sprintf("%d Vigil events were lost (%s full)", dropped, where)
	e.Message = title
	e.FindingInfo = &FindingInfo{UID: uid, Title: title, Types: []string{"gap"}}
	alert := true
	e.IsAlert = &alert
	e.Unmapped = &Unmapped{Vigil: Details{Kind: string(audit.KindGap), Dropped: dropped, Host: src.Host}}
	return e
}

// FromRecord maps one audit log record; checkpoints carry no event and report false.
func FromRecord(src Source, r audit.Record) (Event, bool) {
	switch {
	case r.Kind == audit.KindDecision && r.Decision != nil:
		return FromDecision(src, *r.Decision, r.Seq), true
	case r.Kind == audit.KindSession && r.Session != nil:
		return FromSession(src, *r.Session, r.Seq), true
	case r.Kind == audit.KindGap && r.Gap != nil:
		return FromGap(src, r.Time, r.Gap.Dropped, "audit log", r.Seq), true
	}
	return Event{}, false
}

// AppendEvent appends e's JSON and a newline to dst. It fails, wrapping ErrTooLarge, if the
// line would exceed MaxEventBytes.
func AppendEvent(dst []byte, e *Event) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return dst, fmt.Errorf("siem: encode event: %w", err)
	}
	if len(b)+1 > MaxEventBytes {
		return dst, fmt.Errorf("%w: event %s is %d bytes, limit %d", ErrTooLarge, e.Metadata.UID, len(b)+1, MaxEventBytes)
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}
