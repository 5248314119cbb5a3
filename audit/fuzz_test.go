package audit

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord checks that the decoder never panics and accepts only canonical lines: any
// line it accepts re-encodes to exactly the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	s := testSigner(f, "a")
	var buf bytes.Buffer
	l, err := New(&buf, Head{}, Config{Signer: s, CheckpointEvery: 2})
	if err != nil {
		f.Fatal(err)
	}
	l.AppendDecision(t0, testDecision(1))
	l.AppendSessionEvent(t0, SessionEvent{At: t0, Session: "s", Event: "revoked", From: "monitor", To: "terminate", Trust: 0,
		Reasons: []Reason{{Signal: "impossible_travel", Impact: -60, Text: "Chicago to Warsaw"}}})
	l.AppendGap(t0, 3)
	for _, line := range splitLines(buf.Bytes()) {
		f.Add(line)
	}
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`{"seq":1,"time":"2025-01-01T00:00:00Z","prev":"","kind":"gap","gap":{"dropped":1},"hash":""}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := DecodeRecord(line)
		if err != nil {
			return
		}
		out, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if !bytes.Equal(bytes.TrimSuffix(out, []byte("\n")), bytes.TrimSuffix(line, []byte("\n"))) {
			t.Fatalf("accepted a non-canonical line:\n%q\nre-encodes as\n%q", line, out)
		}
		if _, err := r.ComputeHash(); err != nil {
			t.Fatalf("decoded record cannot be hashed: %v", err)
		}
	})
}

// FuzzVerify checks that Verify never panics on arbitrary logs and never accepts a log whose
// records do not chain.
func FuzzVerify(f *testing.F) {
	s := testSigner(f, "a")
	lines := writeLog(f, s, 4, 2)
	f.Add(joinLines(lines))
	f.Add(joinLines(lines[:3]))
	f.Add(append(joinLines(lines), lines[0]...))
	v := s.Public()
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := Verify(bytes.NewReader(data), v)
		if err != nil {
			return
		}
		if rep.Records != 0 && bytes.Count(data, []byte("\n")) != rep.Records {
			t.Fatalf("verified %d records in %d lines", rep.Records, bytes.Count(data, []byte("\n")))
		}
	})
}
