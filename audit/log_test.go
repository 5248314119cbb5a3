package audit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

func TestCheckpointSchedule(t *testing.T) {
	s := testSigner(t, "a")
	var buf bytes.Buffer
	l, err := New(&buf, Head{}, Config{Signer: s, CheckpointEvery: 3, CheckpointInterval: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		if _, err := l.AppendDecision(t0, testDecision(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Records 1-3, checkpoint 4, record 5.
	if l.Head().Seq != 5 {
		t.Fatalf("head %d, want 5 (a checkpoint after every 3 records)", l.Head().Seq)
	}
	if at, ok := l.CheckpointAt(); !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("CheckpointAt = %v, %v; want the unsigned record's time plus the interval, %v", at, ok, t0.Add(time.Minute))
	}
	if l.CheckpointDue(t0.Add(59 * time.Second)) {
		t.Fatal("checkpoint due before the interval passed")
	}
	if !l.CheckpointDue(t0.Add(time.Minute)) {
		t.Fatal("checkpoint not due after the interval")
	}
	if err := l.Checkpoint(t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if l.CheckpointDue(t0.Add(time.Hour)) {
		t.Fatal("checkpoint due with nothing unsigned")
	}
	if at, ok := l.CheckpointAt(); ok {
		t.Fatalf("CheckpointAt = %v with nothing unsigned", at)
	}
	if err := l.Checkpoint(t0.Add(time.Hour)); err != nil || l.Head().Seq != 6 {
		t.Fatalf("an idle checkpoint must write nothing: head %d, %v", l.Head().Seq, err)
	}
	rep, err := Verify(&buf, s.Public())
	if err != nil || rep.Checkpoints != 2 || rep.Unsigned() != 1 {
		t.Fatalf("report %+v, %v", rep, err)
	}
}

func TestRecordTimesNeverGoBackwards(t *testing.T) {
	s := testSigner(t, "a")
	var buf bytes.Buffer
	l, _ := New(&buf, Head{}, Config{Signer: s})
	l.AppendDecision(t0.Add(time.Minute), testDecision(1))
	r, err := l.AppendDecision(t0, testDecision(2))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Time.Equal(t0.Add(time.Minute)) {
		t.Fatalf("record time %s went back", r.Time)
	}
}

func TestOpenResumesAndRefusesDamage(t *testing.T) {
	s := testSigner(t, "a")
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := Config{Signer: s, CheckpointEvery: 4}
	for run := 0; run < 3; run++ {
		l, err := Open(path, cfg)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for i := 0; i < 5; i++ {
			if _, err := l.AppendDecision(t0, testDecision(i)); err != nil {
				t.Fatal(err)
			}
		}
		if run < 2 {
			// Simulate a crash: flush but leave the last record unsigned.
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := l.Close(t0); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(bytes.NewReader(data), s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 15 || rep.Unsigned() != 1 {
		t.Fatalf("after three runs: %+v", rep)
	}

	// A log signed by another key, or altered, is not extended.
	if _, err := Open(path, Config{Signer: testSigner(t, "b")}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Open with another key: %v, want ErrBadSignature", err)
	}
	damaged := bytes.Replace(data, []byte(`"allow":true`), []byte(`"allow":false`), 1)
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, cfg); !errors.Is(err, ErrTampered) {
		t.Fatalf("Open of an altered log: %v, want ErrTampered", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(after, damaged) {
		t.Fatal("Open changed a log it refused")
	}
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestWriteErrorIsSticky(t *testing.T) {
	l, err := New(&failingWriter{n: 1}, Head{}, Config{Signer: testSigner(t, "a")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendDecision(t0, testDecision(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendDecision(t0, testDecision(2)); err == nil {
		t.Fatal("write error not reported")
	}
	if _, err := l.AppendDecision(t0, testDecision(3)); err == nil {
		t.Fatal("a Log continued after a failed write")
	}
	if l.Head().Seq != 1 {
		t.Fatalf("head %d, want 1", l.Head().Seq)
	}
}

// TestMLDSA65InteropWithCIRCL checks the adapter against CIRCL's own API: signatures are plain
// FIPS 204 ML-DSA-65 with the documented context string, and a signature under another context
// does not verify.
func TestMLDSA65InteropWithCIRCL(t *testing.T) {
	s := testSigner(t, "a")
	msg := CheckpointMessage(7, Hash{1, 2, 3}, t0)
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(s.Public().PublicKey()); err != nil {
		t.Fatal(err)
	}
	if !mldsa65.Verify(&pk, msg, []byte("vigil audit checkpoint"), sig) {
		t.Fatal("CIRCL does not verify the adapter's signature")
	}
	// A signature by the same key under a different context must not verify.
	other := make([]byte, mldsa65.SignatureSize)
	var seedA [32]byte
	copy(seedA[:], testSeed(t, "a"))
	_, skA := mldsa65.NewKeyFromSeed(&seedA)
	if err := mldsa65.SignTo(skA, msg, []byte("another protocol"), true, other); err != nil {
		t.Fatal(err)
	}
	if s.Public().Verify(msg, other) {
		t.Fatal("a signature under another context verified")
	}
	v, err := ParseMLDSA65PublicKey(s.Public().PublicKey())
	if err != nil || !v.Verify(msg, sig) {
		t.Fatalf("parsed key does not verify: %v", err)
	}
	if _, err := ParseMLDSA65PublicKey(make([]byte, 10)); err == nil {
		t.Fatal("a 10-byte public key was accepted")
	}
	if _, err := NewMLDSA65Signer(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte seed was accepted")
	}
}

// TestReopenCountsOnlyUncoveredRecords: a log that ends with its checkpoint reopens with nothing
// to sign, so reopening and closing it writes nothing (each cycle appended a checkpoint that
// signed only the previous one); records a crash left unsigned are counted, the final
// checkpoint not among them, and are due at once.
func TestReopenCountsOnlyUncoveredRecords(t *testing.T) {
	s := testSigner(t, "a")
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := Config{Signer: s, CheckpointEvery: 4}
	l, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendDecision(t0, testDecision(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	closed, _ := os.ReadFile(path)
	for i := 0; i < 3; i++ {
		l, err := Open(path, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if at, ok := l.CheckpointAt(); ok || l.CheckpointDue(t0.Add(time.Hour)) {
			t.Fatalf("reopen %d of a log that ends with its checkpoint: a checkpoint is due at %v", i, at)
		}
		if err := l.Close(t0.Add(time.Duration(2+i) * time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, closed) {
		t.Fatalf("three reopen/close cycles with nothing written grew the log from %d to %d bytes", len(closed), len(after))
	}

	// A crash after records 3-6 (checkpoint 7 after every 4 records) and record 8.
	l, err = Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 2; i <= 6; i++ {
		if _, err := l.AppendDecision(t0.Add(time.Hour), testDecision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if l.Head().Seq != 8 {
		t.Fatalf("head %d, want 8", l.Head().Seq)
	}
	l, err = Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !l.CheckpointDue(t0) {
		t.Fatal("a record a crash left unsigned is not due at once")
	}
	// Record 8 and three more make the four a checkpoint follows.
	for i := 7; i <= 9; i++ {
		if _, err := l.AppendDecision(t0.Add(time.Hour), testDecision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, unsigned := l.CheckpointAt(); l.Head().Seq != 12 || unsigned {
		t.Fatalf("head %d (unsigned records: %v), want checkpoint 12 after record 8 and 9-11", l.Head().Seq, unsigned)
	}
	if err := l.Close(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointWaitsByTheCallersClock: after the clock steps back, records are stamped with the
// head's later time, but a timed checkpoint falls due CheckpointInterval after the caller's now:
// it waited until the clock caught up with the head (a day, for a clock a day ahead).
func TestCheckpointWaitsByTheCallersClock(t *testing.T) {
	s := testSigner(t, "a")
	var buf bytes.Buffer
	l, err := New(&buf, Head{}, Config{Signer: s, CheckpointEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ahead := t0.Add(24 * time.Hour)
	if _, err := l.AppendDecision(ahead, testDecision(1)); err != nil { // the clock a day ahead
		t.Fatal(err)
	}
	if err := l.Checkpoint(ahead); err != nil {
		t.Fatal(err)
	}
	// The clock is put right; decisions go on from t0.
	r, err := l.AppendDecision(t0, testDecision(2))
	if err != nil {
		t.Fatal(err)
	}
	if !r.Time.Equal(ahead) {
		t.Fatalf("record time %s, want the head's %s", r.Time, ahead)
	}
	for i := 3; i < 10; i++ {
		if _, err := l.AppendDecision(t0.Add(time.Duration(i)*time.Second), testDecision(i)); err != nil {
			t.Fatal(err)
		}
	}
	if at, ok := l.CheckpointAt(); !ok || !at.Equal(t0.Add(DefaultCheckpointInterval)) {
		t.Fatalf("CheckpointAt = %v, %v; want %v, the interval after the first unsigned record was appended", at, ok, t0.Add(DefaultCheckpointInterval))
	}
	if l.CheckpointDue(t0.Add(DefaultCheckpointInterval-time.Nanosecond)) || !l.CheckpointDue(t0.Add(DefaultCheckpointInterval)) {
		t.Fatal("the checkpoint is not due exactly the interval after the first unsigned record")
	}
}
