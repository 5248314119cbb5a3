package audit

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestRecordEncodingIsByteExact pins the canonical encoding and the hash construction: the hash
// is SHA-256 over the domain string and the JSON body without the hash field, written out here
// by hand rather than produced by the code under test.
func TestRecordEncodingIsByteExact(t *testing.T) {
	r := Record{
		Seq:  1,
		Time: time.Date(2025, 3, 4, 9, 0, 1, 500_000_000, time.UTC),
		Kind: KindDecision,
		Decision: &Decision{
			At: time.Date(2025, 3, 4, 9, 0, 1, 0, time.UTC), Session: "s-1", Resource: "billing",
			Outcome: "low_trust", Tier: "terminate", Trust: 0, Required: 85,
			Reasons: []Reason{{Signal: "new_device", Impact: -20, Text: "device <x> never seen"}},
		},
	}
	body := `{"seq":1,"time":"2025-03-04T09:00:01.5Z","prev":"0000000000000000000000000000000000000000000000000000000000000000","kind":"decision",` +
		`"decision":{"at":"2025-03-04T09:00:01Z","session":"s-1","resource":"billing","allow":false,"outcome":"low_trust","tier":"terminate","trust":0,"required":85,` +
		`"reasons":[{"signal":"new_device","impact":-20,"text":"device \u003cx\u003e never seen"}]}}`
	want := sha256.Sum256([]byte("vigil/audit/record/v1\n" + body))
	got, err := r.ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	if got != Hash(want) {
		t.Fatalf("hash %s, want %x", got, want)
	}
	r.Hash = got
	line, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	wantLine := strings.TrimSuffix(body, "}") + `,"hash":"` + got.String() + "\"}\n"
	if string(line) != wantLine {
		t.Fatalf("line\n%s\nwant\n%s", line, wantLine)
	}
	back, err := DecodeRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash != got || back.Decision.Reasons[0].Text != "device <x> never seen" {
		t.Fatalf("round trip changed the record: %+v", back)
	}
}

func TestDecodeRecordRejectsNonCanonical(t *testing.T) {
	lines := writeLog(t, testSigner(t, "a"), 2, 100)
	good := string(lines[0])
	cases := []struct {
		name, line string
	}{
		{"empty", ""},
		{"not json", "hello\n"},
		{"extra space", strings.Replace(good, `"seq":1,`, `"seq": 1,`, 1)},
		{"unknown field", strings.Replace(good, `{"seq":1,`, `{"extra":1,"seq":1,`, 1)},
		{"field order", strings.Replace(strings.Replace(good, `"seq":1,`, ``, 1), `"kind":`, `"seq":1,"kind":`, 1)},
		{"uppercase hex", strings.Replace(good, `"prev":"00`, `"prev":"0A`, 1)},
		{"short hash", strings.Replace(good, `"prev":"00`, `"prev":"`, 1)},
		{"non-UTC time", strings.Replace(good, `"time":"2025-03-04T09:00:01Z"`, `"time":"2025-03-04T10:00:01+01:00"`, 1)},
		{"float spelled long", strings.Replace(good, `"required":85`, `"required":85.0`, 1)},
		{"trust above 100", strings.Replace(good, `"required":85`, `"required":185`, 1)},
		{"seq zero", strings.Replace(good, `"seq":1,`, `"seq":0,`, 1)},
		{"kind mismatch", strings.Replace(good, `"kind":"decision"`, `"kind":"gap"`, 1)},
		{"unknown kind", strings.Replace(good, `"kind":"decision"`, `"kind":"note"`, 1)},
		{"trailing data", strings.TrimSuffix(good, "\n") + " {}\n"},
		{"empty reasons present", strings.Replace(good, `"reasons":[{`, `"reasons":[],"x":[{`, 1)},
		{"oversized", strings.Replace(good, `"text":"`, `"text":"`+strings.Repeat("a", MaxRecordBytes), 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.line == good {
				t.Fatal("test case did not change the line")
			}
			_, err := DecodeRecord([]byte(c.line))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeRecord = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := DecodeRecord([]byte(good)); err != nil {
		t.Fatalf("the unmodified line must decode: %v", err)
	}
}

func TestEncodeRejectsOversizedAndInvalid(t *testing.T) {
	d := testDecision(1)
	d.Reasons = make([]Reason, MaxReasons+1)
	for i := range d.Reasons {
		d.Reasons[i] = Reason{Signal: "x", Text: "y"}
	}
	l, err := New(new(strings.Builder), Head{}, Config{Signer: testSigner(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendDecision(t0, d); !errors.Is(err, ErrMalformed) {
		t.Fatalf("too many reasons: %v, want ErrMalformed", err)
	}
	d = testDecision(1)
	d.Trust = 101
	if _, err := l.AppendDecision(t0, d); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trust 101: %v, want ErrMalformed", err)
	}
	if l.Head().Seq != 0 {
		t.Fatalf("rejected records must not advance the chain, head %d", l.Head().Seq)
	}
	if _, err := l.AppendDecision(t0, testDecision(1)); err != nil {
		t.Fatalf("a valid record after rejected ones: %v", err)
	}
}

// TestInvalidUTF8IsRefused: a string that is not UTF-8 is refused when written, whichever field
// it is in. It was written, hashed and signed; JSON turned its bytes into U+FFFD, so the line
// read back was not canonical and the log never verified again (nor could Open extend it).
func TestInvalidUTF8IsRefused(t *testing.T) {
	const bad = "a\xc3" // "aé" cut in the middle of the é
	l, err := New(new(strings.Builder), Head{}, Config{Signer: testSigner(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	decision := []func(*Decision){
		func(d *Decision) { d.Session = bad }, func(d *Decision) { d.User = bad }, func(d *Decision) { d.Resource = bad },
		func(d *Decision) { d.Outcome = bad }, func(d *Decision) { d.Tier = bad },
		func(d *Decision) { d.Reasons[0].Signal = bad }, func(d *Decision) { d.Reasons[0].Text = bad },
	}
	for i, set := range decision {
		d := testDecision(1)
		set(&d)
		if _, err := l.AppendDecision(t0, d); !errors.Is(err, ErrMalformed) {
			t.Errorf("decision field %d not UTF-8: %v, want ErrMalformed", i, err)
		}
	}
	event := []func(*SessionEvent){
		func(e *SessionEvent) { e.Session = bad }, func(e *SessionEvent) { e.User = bad }, func(e *SessionEvent) { e.Event = bad },
		func(e *SessionEvent) { e.From = bad }, func(e *SessionEvent) { e.To = bad },
		func(e *SessionEvent) { e.Reasons[0].Signal = bad }, func(e *SessionEvent) { e.Reasons[0].Text = bad },
	}
	for i, set := range event {
		e := SessionEvent{At: t0, Session: "s", User: "alice", Event: "revoked", From: "monitor", To: "terminate",
			Reasons: []Reason{{Signal: "feedback", Impact: -100, Text: "an analyst's verdict"}}}
		set(&e)
		if _, err := l.AppendSessionEvent(t0, e); !errors.Is(err, ErrMalformed) {
			t.Errorf("session event field %d not UTF-8: %v, want ErrMalformed", i, err)
		}
	}
	if l.Head().Seq != 0 {
		t.Fatalf("rejected records must not advance the chain, head %d", l.Head().Seq)
	}
}

// FuzzWrittenLogVerifies: whatever names and text a Log accepts, the log it writes verifies.
func FuzzWrittenLogVerifies(f *testing.F) {
	f.Add("s-1", "alice", "billing", "typing rhythm")
	f.Add("s", "", "a"+strings.Repeat("é", 120)+"\xc3", "x")
	f.Add("bad\xffname", "\xed\xa0\x80", "<&>\u2028", "\x00\ufffd")
	s := testSigner(f, "a")
	f.Fuzz(func(t *testing.T, session, user, resource, text string) {
		var buf bytes.Buffer
		l, err := New(&buf, Head{}, Config{Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		d := testDecision(1)
		d.Session, d.User, d.Resource, d.Reasons[0].Text = session, user, resource, text
		if _, err := l.AppendDecision(t0, d); err != nil {
			return
		}
		if err := l.Close(t0); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(&buf, s.Public()); err != nil {
			t.Fatalf("a log the Log wrote does not verify: %v", err)
		}
	})
}
