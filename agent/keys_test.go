package agent_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/audit"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackMissingKeyIsNotReplaced takes a key file away from the directory of an agent that
// has run (as a lost file or a half-restored disk would): the agent refuses to start, naming
// the missing file, and creates and overwrites nothing, so that restoring the key is all it
// takes. Before, it made a new key, and for audit.key overwrote audit.pub, the only copy of the
// key that verifies the log, then refused with an error about a bad signature.
func TestAttackMissingKeyIsNotReplaced(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s", User: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"}); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{agent.AuditKeyFile, agent.DeviceKeyFile} {
		t.Run(key, func(t *testing.T) {
			d := copyDir(t, dir)
			before := snapshot(t, d)
			os.Remove(filepath.Join(d, key))
			_, err := agent.New(agent.Config{Dir: d})
			if !errors.Is(err, agent.ErrState) || !strings.Contains(err.Error(), filepath.Join(d, key)+" is missing") {
				t.Fatalf("an agent without %s: %v, want a refusal naming it missing", key, err)
			}
			if _, err := os.Stat(filepath.Join(d, key)); err == nil {
				t.Errorf("%s was made afresh", key)
			}
			for name, data := range before {
				if now, err := os.ReadFile(filepath.Join(d, name)); name != key && (err != nil || !bytes.Equal(now, data)) {
					t.Errorf("%s changed (%v)", name, err)
				}
			}
			verifyLog(t, d)
		})
	}

	// A public key file that is not the audit key's is refused, not replaced.
	d := copyDir(t, dir)
	other := []byte(base64.StdEncoding.EncodeToString([]byte("another key")) + "\n")
	if err := os.WriteFile(filepath.Join(d, agent.AuditPubFile), other, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := agent.New(agent.Config{Dir: d}); !errors.Is(err, agent.ErrState) || !strings.Contains(err.Error(), agent.AuditPubFile+" is not the public key of") {
		t.Fatalf("an agent whose %s is another key's: %v, want a refusal naming it", agent.AuditPubFile, err)
	}
	if now, _ := os.ReadFile(filepath.Join(d, agent.AuditPubFile)); !bytes.Equal(now, other) {
		t.Errorf("%s was overwritten", agent.AuditPubFile)
	}

	// A directory no agent has started in still gets its keys.
	fresh := t.TempDir()
	if _, err := agent.New(agent.Config{Dir: fresh}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{agent.AuditKeyFile, agent.DeviceKeyFile, agent.AuditPubFile} {
		if _, err := os.Stat(filepath.Join(fresh, key)); err != nil {
			t.Errorf("a fresh directory: %v", err)
		}
	}
}

// snapshot reads every file of an agent's directory.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if !e.IsDir() {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = data
		}
	}
	return out
}

// verifyLog checks the audit log of dir against its public key file.
func verifyLog(t *testing.T, dir string) {
	t.Helper()
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
	log, err := os.ReadFile(filepath.Join(dir, agent.AuditLogFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Verify(bytes.NewReader(log), key); err != nil {
		t.Errorf("the log no longer verifies against %s: %v", agent.AuditPubFile, err)
	}
}
