package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
)

// writeTestLog writes a signed log of n decisions (and a gap, if gap) with the key behind
// privPath, and returns its path.
func writeTestLog(t *testing.T, dir, privPath string, n int, gap bool) string {
	t.Helper()
	seed, err := os.ReadFile(privPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewMLDSA65Signer(seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "decisions.log")
	l, err := audit.Open(path, audit.Config{Signer: signer, CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 2, 24, 20, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		if _, err := l.AppendDecision(at, audit.Decision{At: at, Session: "s-alice", Resource: "billing", Outcome: "low_trust",
			Tier: "hard_challenge", Trust: 14, Required: 85,
			Reasons: []audit.Reason{{Signal: "impossible_travel", Impact: -34, Text: "7511 km in 4h0m0s"}}}); err != nil {
			t.Fatal(err)
		}
		if gap && i == 2 {
			l.AppendGap(at, 12)
		}
	}
	if err := l.Close(at); err != nil {
		t.Fatal(err)
	}
	return path
}

func keygen(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	var out bytes.Buffer
	if err := runAudit(context.Background(), []string{"keygen", "--priv", priv, "--pub", pub}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "key ") {
		t.Fatalf("keygen printed %q", out.String())
	}
	return priv, pub
}

func TestAuditVerifyCLI(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "device")
	_, otherPub := keygen(t, dir, "other")
	path := writeTestLog(t, dir, priv, 10, false)
	if info, err := os.Stat(priv); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("private key file mode %v, %v", info.Mode(), err)
	}

	var out, errOut bytes.Buffer
	if err := runAudit(context.Background(), []string{"verify", "--log", path, "--key", pub}, &out, &errOut); err != nil {
		t.Fatalf("verify: %v\n%s", err, errOut.String())
	}
	if !strings.Contains(out.String(), "chain intact") || !strings.Contains(out.String(), "10 decisions") {
		t.Fatalf("report:\n%s", out.String())
	}

	// A tampered record is named.
	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	lines[6] = bytes.Replace(lines[6], []byte(`"trust":14`), []byte(`"trust":94`), 1)
	tampered := filepath.Join(dir, "tampered.log")
	os.WriteFile(tampered, bytes.Join(lines, nil), 0o600)
	err := runAudit(context.Background(), []string{"verify", "--log", tampered, "--key", pub}, &out, &errOut)
	if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "record 7") || !strings.Contains(err.Error(), tampered) || exitCodeOf(err) != 1 {
		t.Fatalf("tampered log: %v (exit %d, want 1: it does not verify)", err, exitCodeOf(err))
	}

	// A log checked against another key fails on the first checkpoint.
	err = runAudit(context.Background(), []string{"verify", "--log", path, "--key", otherPub}, &out, &errOut)
	if !errors.Is(err, audit.ErrBadSignature) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestAuditVerifyCLIStrictAndJSON(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "device")
	path := writeTestLog(t, dir, priv, 5, true)
	var out, errOut bytes.Buffer
	if err := runAudit(context.Background(), []string{"verify", "--json", "--log", path, "--key", pub}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Decisions int    `json:"decisions"`
		Dropped   uint64 `json:"dropped"`
		Unsigned  uint64 `json:"unsigned"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Decisions != 5 || rep.Dropped != 12 || rep.Unsigned != 0 {
		t.Fatalf("report %+v", rep)
	}
	err := runAudit(context.Background(), []string{"verify", "--strict", "--log", path, "--key", pub}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "12 entries were dropped") {
		t.Fatalf("--strict with a gap: %v", err)
	}
}

func TestAuditCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	_, pub := keygen(t, dir, "device")
	garbage := filepath.Join(dir, "garbage.pub")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	emptyLog := filepath.Join(dir, "empty.log")
	os.WriteFile(emptyLog, nil, 0o600)
	unsigned := filepath.Join(dir, "unsigned.log")
	var b bytes.Buffer
	l, _ := audit.New(&b, audit.Head{}, audit.Config{Signer: mustSigner(t)})
	l.AppendGap(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	os.WriteFile(unsigned, b.Bytes(), 0o600)

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "missing subcommand"},
		{"unknown subcommand", []string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{"no log", []string{"verify", "--key", pub}, "--log is required"},
		{"no key", []string{"verify", "--log", emptyLog}, "--key is required"},
		{"missing log", []string{"verify", "--log", filepath.Join(dir, "nope.log"), "--key", pub}, "--log: open"},
		{"missing key", []string{"verify", "--log", emptyLog, "--key", filepath.Join(dir, "nope.pub")}, "--key"},
		{"garbage key", []string{"verify", "--log", emptyLog, "--key", garbage}, "not an ML-DSA-65 public key"},
		{"unknown flag", []string{"verify", "--lgo", emptyLog}, "flag provided but not defined"},
		{"stray argument", []string{"verify", "--log", emptyLog, "--key", pub, "extra"}, `unexpected argument "extra"`},
		{"unsigned log", []string{"verify", "--log", unsigned, "--key", pub}, "no signed checkpoint"},
		{"keygen over an existing key", []string{"keygen", "--priv", pub, "--pub", filepath.Join(dir, "x.pub")}, "--priv"},
		{"keygen without --pub", []string{"keygen", "--priv", filepath.Join(dir, "y.key")}, "--pub is required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := runAudit(context.Background(), c.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
			// 1 for a log that does not verify, 2 for a wrong flag or file (a docs review found
			// both were 2, so a script could not tell tampering from a typo).
			want := 2
			if c.name == "unsigned log" {
				want = 1
			}
			if got := exitCodeOf(err); got != want {
				t.Errorf("exit %d, want %d", got, want)
			}
		})
	}
	var out bytes.Buffer
	// An empty log verifies only against a head: without one, nothing shows it was not emptied.
	if err := runAudit(context.Background(), []string{"verify", "--log", emptyLog, "--key", pub}, &out, &out); err == nil || !strings.Contains(err.Error(), "the log is empty") || !strings.Contains(err.Error(), "--head") {
		t.Fatalf("empty log: %v\n%s", err, out.String())
	}
	if err := runAudit(context.Background(), []string{"help"}, &out, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("help: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := runAudit(ctx, []string{"verify", "--log", emptyLog, "--key", pub}, &out, &out); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func mustSigner(t *testing.T) audit.Signer {
	s, _, err := audit.GenerateMLDSA65(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestAttackAuditTruncationCLI: a log cut back to a checkpoint, or emptied, passes `vigil audit
// verify` alone (even --strict) but fails against the head its owner exported, or against a
// sequence number an operator kept.
func TestAttackAuditTruncationCLI(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "device")
	seed, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewMLDSA65Signer(seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "decisions.log")
	l, err := audit.Open(path, audit.Config{Signer: signer, CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 2, 24, 20, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		if _, err := l.AppendDecision(at, audit.Decision{At: at, Session: "s-alice", Resource: "billing", Outcome: "allowed",
			Tier: "monitor", Trust: 90, Required: 85}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Checkpoint(at); err != nil {
		t.Fatal(err)
	}
	sh, err := l.SignHead()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(at); err != nil {
		t.Fatal(err)
	}
	headJSON, _ := json.Marshal(sh)
	headPath := filepath.Join(dir, "head.json")
	os.WriteFile(headPath, headJSON, 0o600)

	data, _ := os.ReadFile(path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	firstCheckpoint := 0
	for i, line := range lines {
		if bytes.Contains(line, []byte(`"checkpoint"`)) {
			firstCheckpoint = i + 1
			break
		}
	}
	for _, tc := range []struct {
		name string
		log  []byte
	}{
		{"cut back to the first checkpoint", bytes.Join(lines[:firstCheckpoint], nil)},
		{"emptied", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cut := filepath.Join(t.TempDir(), "cut.log")
			os.WriteFile(cut, tc.log, 0o600)
			var out bytes.Buffer
			if tc.log != nil {
				if err := runAudit(context.Background(), []string{"verify", "--strict", "--log", cut, "--key", pub}, &out, &out); err != nil {
					t.Fatalf("the cut log fails even alone (the attack needs it to pass): %v", err)
				}
			}
			for _, flags := range [][]string{{"--head", headPath}, {"--expect-seq", fmt.Sprint(sh.Seq), "--expect-head", sh.Hash.String()}} {
				args := append([]string{"verify", "--log", cut, "--key", pub}, flags...)
				err := runAudit(context.Background(), args, &out, &out)
				if !errors.Is(err, audit.ErrTruncated) || !strings.Contains(err.Error(), "cut off") {
					t.Fatalf("verify %v: %v", flags, err)
				}
			}
		})
	}
	var out bytes.Buffer
	if err := runAudit(context.Background(), []string{"verify", "--log", path, "--key", pub, "--head", headPath}, &out, &out); err != nil {
		t.Fatalf("the whole log against its head: %v\n%s", err, out.String())
	}
}

// exitCodeOf is the process exit code main gives err.
func exitCodeOf(err error) int {
	var coded interface{ ExitCode() int }
	switch {
	case err == nil:
		return 0
	case errors.As(err, &coded):
		return coded.ExitCode()
	}
	return 2
}

// TestAuditVerifyUnreadableLogIsUsage: a --log that cannot be read (a directory) exits 2 like
// a missing one, not 1 as a log that does not verify (a code review).
func TestAuditVerifyUnreadableLogIsUsage(t *testing.T) {
	dir := t.TempDir()
	_, pub := keygen(t, dir, "device")
	err := runAudit(context.Background(), []string{"verify", "--log", dir, "--key", pub}, io.Discard, io.Discard)
	if err == nil || exitCodeOf(err) != 2 {
		t.Fatalf("audit verify of a directory: %v, exit %d; want exit 2", err, exitCodeOf(err))
	}
}

// TestAuditVerifyCLIGapCauses: entries the log format refused are not reported as lost to a
// full queue (a review: every drop was "queue full").
func TestAuditVerifyCLIGapCauses(t *testing.T) {
	dir := t.TempDir()
	priv, pub := keygen(t, dir, "device")
	seed, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewMLDSA65Signer(seed)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 2, 24, 20, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		gaps     []audit.Gap
		want     string
		wantJSON uint64
	}{
		{[]audit.Gap{{Dropped: 3}}, "3 entries were dropped before reaching the log (queue full)", 0},
		{[]audit.Gap{{Dropped: 2, Invalid: 2}}, "2 entries were dropped before reaching the log (invalid: the log format refused them)", 2},
		{[]audit.Gap{{Dropped: 3}, {Dropped: 4, Invalid: 2}}, "7 entries were dropped before reaching the log (5 queue full, 2 invalid: the log format refused them)", 2},
	} {
		path := filepath.Join(t.TempDir(), "decisions.log")
		l, err := audit.Open(path, audit.Config{Signer: signer})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range c.gaps {
			if _, err := l.AppendGapOf(at, g); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Close(at); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := runAudit(context.Background(), []string{"verify", "--log", path, "--key", pub}, &out, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), c.want+"; first gap at record 1\n") {
			t.Errorf("gaps %+v: report\n%s\nwant %q", c.gaps, out.String(), c.want)
		}
		out.Reset()
		if err := runAudit(context.Background(), []string{"verify", "--json", "--log", path, "--key", pub}, &out, &out); err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Invalid uint64 `json:"dropped_invalid"`
		}
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil || rep.Invalid != c.wantJSON {
			t.Errorf("gaps %+v: JSON dropped_invalid %d (%v), want %d", c.gaps, rep.Invalid, err, c.wantJSON)
		}
	}
}
