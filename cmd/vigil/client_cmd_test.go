package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
)

// TestClientKeepsRecordWhenEnrolmentFails runs `vigil client` for the first time with a --dir
// the run creates, a good token and a coordinator that is not up (as in the quick start, which
// starts the client just after the coordinator). The authority issues the record and the
// coordinator refuses the connection: the directory must keep the record and its signing key,
// and the next run resume from them without a token. A run that fails before it writes
// anything leaves no directory.
func TestClientKeepsRecordWhenEnrolmentFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	orgDir := org(t)
	lines, _ := inProcess(t, ctx, "enrol", "serve", "--dir", filepath.Join(orgDir, "enrol"), "--listen", "127.0.0.1:0", "--log-level", "warn")
	addr := strings.Fields(lines.wait(t, "enrolment authority listening on "))[0]
	go func() {
		for range lines.lines {
		}
	}()
	base := []string{"client", "--device-id", "d9", "--coordinator", "127.0.0.1:1", "--synthetic-seed", "1",
		"--root", filepath.Join(orgDir, "root.json"), "--ca", filepath.Join(orgDir, "pki", "ca.pem")}
	runClient := func(dir string, extra ...string) error {
		return run(ctx, append(append(base, "--dir", dir), extra...), io.Discard, io.Discard)
	}

	// Nothing written yet: the directory made for the run goes.
	early := filepath.Join(t.TempDir(), "new", "dev")
	if err := runClient(early, "--enrol", addr, "--enrol-ca", filepath.Join(orgDir, "enrol", "nope.pem"), "--token", "x", "--region", "eu"); err == nil {
		t.Fatal("a client with a missing --enrol-ca ran")
	}
	if _, err := os.Stat(filepath.Dir(early)); !os.IsNotExist(err) {
		t.Fatalf("a run that wrote nothing left %s: %v", filepath.Dir(early), err)
	}

	dir := filepath.Join(t.TempDir(), "new", "dev")
	err := runClient(dir, "--enrol", addr, "--enrol-ca", filepath.Join(orgDir, "enrol", "ca.pem"), "--token", token(t, orgDir, "d9"), "--region", "eu")
	if err == nil || !strings.Contains(err.Error(), "enrol d9") || !strings.Contains(err.Error(), "no new token needed") {
		t.Fatalf("first run against a coordinator that is down: %v", err)
	}
	idDir := filepath.Join(dir, "identity")
	for _, name := range []string{client.SigningKeyFile, client.RecordFile} {
		if _, err := os.Stat(filepath.Join(idDir, name)); err != nil {
			t.Fatalf("the failed first run lost %s: %v", name, err)
		}
	}
	tokens, err := pki.OpenTokens(filepath.Join(orgDir, "enrol", enrolment.TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := tokens.Stats(time.Now()); err != nil || s.Redeemed != 1 {
		t.Fatalf("token store %+v, %v: want the one token redeemed", s, err)
	}
	// The next run needs neither the authority nor a token: it goes straight to the
	// coordinator with the record it kept (and fails there again, the coordinator still down).
	err = runClient(dir)
	if err == nil || !strings.Contains(err.Error(), "enrol d9") || strings.Contains(err.Error(), "register") {
		t.Fatalf("second run without a token: %v", err)
	}
	if _, err := os.Stat(filepath.Join(idDir, client.RecordFile)); err != nil {
		t.Fatalf("the second run lost the record: %v", err)
	}
}

// TestClientKeepsRecordUnderWrongRoot runs a device's first run with another organisation's
// root.json as --root: the record the token bought does not verify under it and must be
// kept, unused, the error naming --root and the file; the next run with the right --root uses
// it without a token (and fails only at the coordinator, which is down).
func TestClientKeepsRecordUnderWrongRoot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	orgDir, otherOrg := org(t), org(t)
	lines, _ := inProcess(t, ctx, "enrol", "serve", "--dir", filepath.Join(orgDir, "enrol"), "--listen", "127.0.0.1:0", "--log-level", "warn")
	addr := strings.Fields(lines.wait(t, "enrolment authority listening on "))[0]
	go func() {
		for range lines.lines {
		}
	}()
	dir := filepath.Join(t.TempDir(), "new", "dev")
	base := []string{"client", "--device-id", "d9", "--coordinator", "127.0.0.1:1", "--synthetic-seed", "1",
		"--ca", filepath.Join(orgDir, "pki", "ca.pem"), "--dir", dir}
	wrongRoot := filepath.Join(otherOrg, "root.json")
	err := run(ctx, append(base, "--root", wrongRoot, "--enrol", addr, "--enrol-ca", filepath.Join(orgDir, "enrol", "ca.pem"),
		"--token", token(t, orgDir, "d9"), "--region", "eu"), io.Discard, io.Discard)
	kept := filepath.Join(dir, "identity", client.UnverifiedRecordFile)
	if err == nil || !strings.Contains(err.Error(), "does not verify under --root "+wrongRoot) ||
		!strings.Contains(err.Error(), kept) || !strings.Contains(err.Error(), "no new token needed") {
		t.Fatalf("first run under another organisation's root: %v", err)
	}
	for _, name := range []string{client.SigningKeyFile, client.UnverifiedRecordFile} {
		if _, err := os.Stat(filepath.Join(dir, "identity", name)); err != nil {
			t.Fatalf("the run under the wrong root lost %s: %v", name, err)
		}
	}
	err = run(ctx, append(base, "--root", filepath.Join(orgDir, "root.json")), io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "enrol d9") || strings.Contains(err.Error(), "register") {
		t.Fatalf("second run with the right root and no token: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "identity", client.RecordFile)); err != nil {
		t.Fatalf("the verified record was not saved as the device's: %v", err)
	}
}
