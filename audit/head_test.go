package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// exportedLog writes n decisions with a checkpoint every 10 records, exports the signed head
// after the last one, and returns the log's lines and the exported head as JSON.
func exportedLog(t *testing.T, s Signer, n int) (lines [][]byte, head []byte) {
	t.Helper()
	var buf bytes.Buffer
	l, err := New(&buf, Head{}, Config{Signer: s, CheckpointEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := l.AppendDecision(t0.Add(time.Duration(i)*time.Second), testDecision(i)); err != nil {
			t.Fatal(err)
		}
	}
	sh, err := l.SignHead()
	if err != nil {
		t.Fatal(err)
	}
	if head, err = json.Marshal(sh); err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	return splitLines(buf.Bytes()), head
}

// TestAttackAuditTruncation is the review's attack: cut a decision log back to one of its
// checkpoints, or empty it. Both verify on their own; against the exported head they fail with
// ErrTruncated.
func TestAttackAuditTruncation(t *testing.T) {
	s := testSigner(t, "device")
	lines, exported := exportedLog(t, s, 35)
	head, err := ParseSignedHead(exported, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	lastCheckpoint := 0
	for i, l := range lines {
		if bytes.Contains(l, []byte(`"checkpoint"`)) {
			lastCheckpoint = i + 1
		}
	}
	if lastCheckpoint == 0 || lastCheckpoint == len(lines) {
		t.Fatalf("want a checkpoint before the end; lines %d, last checkpoint at %d", len(lines), lastCheckpoint)
	}
	for _, tc := range []struct {
		name  string
		lines [][]byte
	}{
		{"cut back to the last checkpoint", lines[:lastCheckpoint]},
		{"emptied", nil},
		{"last record dropped", lines[:len(lines)-1]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := bytes.Join(tc.lines, nil)
			if _, err := Verify(bytes.NewReader(log), s.Public()); err != nil {
				t.Fatalf("the cut log does not even verify alone (the attack needs it to): %v", err)
			}
			_, err := VerifyAgainst(bytes.NewReader(log), s.Public(), head)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("VerifyAgainst = %v, want ErrTruncated", err)
			}
		})
	}
	if _, err := VerifyAgainst(bytes.NewReader(bytes.Join(lines, nil)), s.Public(), head); err != nil {
		t.Fatalf("the whole log against its own head: %v", err)
	}
}

// TestAttackAuditRewrittenUnderExportedHead: a log rebuilt from scratch with the same number of
// records (and valid checkpoints under a key the attacker holds) cannot match a head signed by
// the device's key, nor forge one.
func TestAttackAuditRewrittenUnderExportedHead(t *testing.T) {
	device, attacker := testSigner(t, "device"), testSigner(t, "attacker")
	_, exported := exportedLog(t, device, 35)
	head, err := ParseSignedHead(exported, device.Public())
	if err != nil {
		t.Fatal(err)
	}
	forgedLines, forgedHead := exportedLog(t, attacker, 35)
	if _, err := ParseSignedHead(forgedHead, device.Public()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("head signed by another key: %v", err)
	}
	var tampered SignedHead
	if err := json.Unmarshal(exported, &tampered); err != nil {
		t.Fatal(err)
	}
	tampered.Seq--
	b, _ := json.Marshal(tampered)
	if _, err := ParseSignedHead(b, device.Public()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("head with its sequence number edited: %v", err)
	}
	// Same length, other contents: the attacker's log fails on its checkpoints' key first.
	if _, err := VerifyAgainst(bytes.NewReader(bytes.Join(forgedLines, nil)), device.Public(), head); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("rewritten log: %v", err)
	}
	// An operator who kept only the sequence number and hash catches a rewrite too.
	other := head
	other.Hash[0] ^= 1
	lines, _ := exportedLog(t, device, 35)
	if _, err := VerifyAgainst(bytes.NewReader(bytes.Join(lines, nil)), device.Public(), other); !errors.Is(err, ErrTampered) {
		t.Fatalf("head hash mismatch: %v", err)
	}
}
