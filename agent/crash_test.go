package agent_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// copyDir copies the agent's directory as it is on disk now: what a crash would leave.
func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return to
}

// TestAttackCrashForgetsRevocation: an analyst marks a session compromised and the agent dies
// (killed, or the machine loses power) before its next periodic save, 30 seconds later. The
// session came back from the saved state as it stood before, in good standing, its page's
// token working (found by review). A revocation is now saved at once.
func TestAttackCrashForgetsRevocation(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s1", User: "dave"}); err != nil {
		t.Fatal(err)
	}
	if err := r.a.Save(); err != nil { // the periodic save, before the verdict
		t.Fatal(err)
	}
	state := filepath.Join(dir, agent.StateFile)
	before, err := os.ReadFile(state) // sealed under a fresh nonce at every save
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.grpc.Feedback(ctx, &vigilv1.FeedbackRequest{Session: "s1", Verdict: "compromised"}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if now, err := os.ReadFile(state); err == nil && !bytes.Equal(now, before) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revocation was not saved within 5 s")
		}
	}
	crashed := copyDir(t, dir)
	r2 := startAgent(t, crashed, "", false)
	d, err := r2.grpc.Authorize(as(context.Background(), r2.secret), &vigilv1.AuthorizeRequest{Session: "s1", Resource: "profile.read"})
	if err != nil {
		t.Fatal(err)
	}
	if d.Allow || d.Outcome != "revoked" {
		t.Fatalf("after the crash, the revoked session: %v (%s), want revoked", d.Allow, d.Outcome)
	}
}
