package siem

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilauth/vigil/audit"
)

// FuzzValidate feeds Validate arbitrary bytes, seeded with real events: it must never panic,
// and what it accepts must name a class this package emits.
func FuzzValidate(f *testing.F) {
	for _, ev := range []Event{
		FromDecision(Source{}, audit.Decision{At: testAt, Session: "s", Resource: "r", Outcome: "low_trust", Tier: "monitor"}, 1),
		FromSession(Source{}, audit.SessionEvent{At: testAt, Session: "s", User: "u", Event: "opened"}, 0),
		FromGap(Source{}, testAt, 3, "x", 0),
	} {
		line, _ := AppendEvent(nil, &ev)
		f.Add(line)
	}
	f.Add([]byte(`{"class_uid":3002}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		if Validate(line) == nil {
			if _, err := lineMetaOf(line); err != nil {
				t.Fatalf("valid event without the fields senders read: %v", err)
			}
		}
	})
}

// FuzzSpoolOpen opens a spool whose segment holds arbitrary bytes: it must never panic, and
// whatever it reads back ends at a newline.
func FuzzSpoolOpen(f *testing.F) {
	f.Add([]byte("{\"a\":1}\n{\"b\":2}\n"), []byte("8"))
	f.Add([]byte("no newline"), []byte("0"))
	f.Add([]byte("\n\n\n"), []byte("-1"))
	f.Fuzz(func(t *testing.T, seg, ack []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segName(0)), seg, 0o600)
		os.WriteFile(filepath.Join(dir, "ack-a"), ack, 0o600)
		s, err := OpenSpool(dir, 1<<20, MinSegmentBytes, "a")
		if err != nil {
			return
		}
		defer s.Close()
		for from := s.Cursor("a").Acked(); ; {
			b, n, next, err := s.Read(from, 10, MaxEventBytes)
			if err != nil || n == 0 {
				return
			}
			if b[len(b)-1] != '\n' || next <= from {
				t.Fatalf("read %q from %d to %d", b, from, next)
			}
			from = next
		}
	})
}
