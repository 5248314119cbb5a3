package agent_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// An idle agent must not cost its device: its loop sleeps while nothing happens, yet what the
// guard decides reaches the audit log while the agent runs, and the heads it exports grow only
// with the log.
func TestAuditLoopIdle(t *testing.T) {
	t.Run("decisions reach the log without a head export", func(t *testing.T) {
		dir := t.TempDir()
		r := startAgentConfig(t, agent.Config{Dir: dir, HeadInterval: time.Hour}, "", false)
		ctx := as(context.Background(), r.secret)
		if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s", User: "ida"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"}); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(dir, agent.AuditLogFile)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			b, err := os.ReadFile(logPath)
			if err == nil && bytes.Contains(b, []byte(`"profile.read"`)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the decision is not in the running agent's audit log after 30 s: %d bytes, %v", len(b), err)
			}
		}
	})
	t.Run("no head is exported twice", func(t *testing.T) {
		dir := t.TempDir()
		const interval = 20 * time.Millisecond
		r := startAgentConfig(t, agent.Config{Dir: dir, HeadInterval: interval}, "", false)
		ctx := as(context.Background(), r.secret)
		headsPath := filepath.Join(dir, agent.AuditHeadsFile)
		lines := func() int {
			b, err := os.ReadFile(headsPath)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			return bytes.Count(b, []byte("\n"))
		}
		time.Sleep(10 * interval)
		if n := lines(); n != 0 {
			t.Fatalf("an agent with an empty log exported %d heads", n)
		}
		if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s", User: "ida"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"}); err != nil {
			t.Fatal(err)
		}
		// SignedHead drains the queue and writes the head of everything recorded so far; the
		// log's next change is the timed checkpoint, 10 s away.
		h, err := r.a.SignedHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		before := lines()
		if before == 0 {
			t.Fatal("the log grew but no head was exported")
		}
		time.Sleep(25 * interval)
		if after := lines(); after != before {
			t.Fatalf("the log stayed at record %d, but the heads file went from %d to %d lines in 25 intervals", h.Seq, before, after)
		}
	})
}
