package agent_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/audit"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackAuditLogCutBack: whoever can write the agent's files cuts the last decisions off
// the audit log, at a record boundary, and restarts it. The agent accepted the shorter chain
// and signed it at its next export, over audit-head.json: a review cut three transfer
// decisions and `vigil audit verify` against the new head passed. The agent now keeps the head
// it signed last in its sealed state and refuses to start on a log that does not reach it.
func TestAttackAuditLogCutBack(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s1", User: "erin"}); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, agent.AuditLogFile)
	if _, err := r.a.SignedHead(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(logPath)
	for range 3 {
		if _, err := r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: "s1", Resource: "transfer"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.a.SignedHead(context.Background()); err != nil { // exported: the three decisions are in
		t.Fatal(err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(logPath)
	if !bytes.HasPrefix(after, before) || len(after) == len(before) {
		t.Fatal("the log did not grow by the decisions")
	}
	if err := os.WriteFile(logPath, before, 0o600); err != nil { // cut back to before them
		t.Fatal(err)
	}
	_, err := agent.New(agent.Config{Dir: dir})
	if !errors.Is(err, agent.ErrState) {
		t.Fatalf("an agent on the cut log: %v, want ErrState", err)
	}
	t.Log(err)
	if err := os.WriteFile(logPath, after, 0o600); err != nil { // put back whole, it starts
		t.Fatal(err)
	}
	startAgent(t, dir, "", false)
}

// TestCrashTearsTheLastAuditRecord: the log is written through a buffer, so a crash can leave
// the part of a record that fitted in it; the agent starts again without that part, which was
// never synced, and logs on. The same for a torn line of exported heads. A log torn inside
// what the agent exported is still refused.
func TestCrashTearsTheLastAuditRecord(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s1", User: "erin"}); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, agent.AuditLogFile)
	whole, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(whole, []byte("\n"))
	last := lines[len(lines)-2]
	torn := append(bytes.Clone(whole), last[:len(last)/2]...) // a record half written
	if err := os.WriteFile(logPath, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	headsPath := filepath.Join(dir, agent.AuditHeadsFile)
	heads, err := os.ReadFile(headsPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(headsPath, append(bytes.Clone(heads), heads[:len(heads)/2]...), 0o644); err != nil { // and a head
		t.Fatal(err)
	}
	r = startAgent(t, dir, "", false)
	if _, err := r.grpc.Authorize(as(context.Background(), r.secret), &vigilv1.AuthorizeRequest{Session: "s1", Resource: "transfer"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.a.SignedHead(context.Background()); err != nil { // exported: the decision is in
		t.Fatal(err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(logPath)
	if !bytes.HasPrefix(after, whole) || len(after) == len(whole) {
		t.Fatal("the log did not go on from its last whole record")
	}
	pub, err := os.ReadFile(filepath.Join(dir, agent.AuditPubFile))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(pub)))
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.ParseMLDSA65PublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(bytes.NewReader(after), key); err != nil {
		t.Fatalf("the log after the torn record was cut: %v", err)
	}
	headsAfter, _ := os.ReadFile(headsPath)
	newHeads, _ := bytes.CutPrefix(headsAfter, heads)
	if lines := bytes.Split(bytes.TrimSuffix(newHeads, []byte("\n")), []byte("\n")); len(lines) == 0 || len(newHeads) == 0 {
		t.Fatal("no head exported after the restart")
	} else {
		for _, line := range lines {
			if _, err := audit.ParseSignedHead(line, key); err != nil {
				t.Fatalf("a head exported after the torn one was cut: %v", err)
			}
		}
	}

	decision, _, _ := bytes.Cut(after[len(whole):], []byte("\n"))
	exported := after[:len(whole)+len(decision)/2] // cut inside the decision, which was exported
	if err := os.WriteFile(logPath, exported, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.New(agent.Config{Dir: dir}); !errors.Is(err, agent.ErrState) {
		t.Fatalf("an agent on a log torn inside its exported records: %v, want ErrState", err)
	}
}
