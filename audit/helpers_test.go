package audit

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"
)

// testSigner returns a deterministic ML-DSA-65 signer; label picks the key.
func testSigner(t testing.TB, label string) *MLDSA65Signer {
	t.Helper()
	s, err := NewMLDSA65Signer(testSeed(t, label))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2025, 3, 4, 9, 0, 0, 0, time.UTC)

func testDecision(i int) Decision {
	return Decision{
		At:       t0.Add(time.Duration(i) * time.Second),
		Session:  "s-1",
		User:     "alice",
		Resource: "billing",
		Allow:    i%3 != 0,
		Outcome:  "allowed",
		Tier:     "monitor",
		Trust:    80 + float64(i%7),
		Required: 85,
		Reasons:  []Reason{{Signal: "behaviour", Impact: -12.5, Text: fmt.Sprintf("typing rhythm deviated (window %d)", i)}},
	}
}

// writeLog writes n decisions with a checkpoint every `every` records and a final checkpoint,
// and returns the file's lines.
func writeLog(t testing.TB, s Signer, n, every int) [][]byte {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(&buf, Head{}, Config{Signer: s, CheckpointEvery: every})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := l.AppendDecision(t0.Add(time.Duration(i)*time.Second), testDecision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(t0.Add(time.Duration(n+1) * time.Second)); err != nil {
		t.Fatal(err)
	}
	return splitLines(buf.Bytes())
}

func splitLines(b []byte) [][]byte {
	var lines [][]byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if len(l) > 0 {
			lines = append(lines, append([]byte(nil), l...))
		}
	}
	return lines
}

func joinLines(lines [][]byte) []byte { return bytes.Join(lines, nil) }

// rehash recomputes a decoded record's hash and returns its canonical line, as an attacker who
// knows the format (but not the signing key) can.
func rehash(t testing.TB, r Record) []byte {
	t.Helper()
	h, err := r.ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	r.Hash = h
	line, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return line
}

func mustDecode(t testing.TB, line []byte) Record {
	t.Helper()
	r, err := DecodeRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testSeed(t testing.TB, label string) []byte {
	t.Helper()
	seed := sha256.Sum256([]byte("vigil audit test key " + label))
	return seed[:]
}
