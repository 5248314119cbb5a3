package agent_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilauth/vigil/agent"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// The agent listens on the loopback or a unix socket that only its owner may connect to.
func TestListen(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:7411", ":7411", "example.com:7411", "nonsense"} {
		if l, err := agent.Listen(addr); err == nil {
			l.Close()
			t.Errorf("Listen(%q) accepted", addr)
		}
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "vigil.sock")
	l, err := agent.Listen("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, %v", fi.Mode().Perm(), err)
	}
	a, err := agent.New(agent.Config{Dir: filepath.Join(dir, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, l, nil, agent.HTTPOptions{}) }()
	defer func() { cancel(); <-done }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := vigilv1.NewAgentClient(conn)
	st, err := c.StartSession(as(context.Background(), a.Secret()), &vigilv1.StartSessionRequest{Session: "u1", User: "gil"})
	if err != nil || st.Tier != "monitor" {
		t.Fatalf("over the unix socket: %v %v", st, err)
	}
}

// TestAttackListenTakesOverPath gives Listen unix paths that are not a socket a previous run
// left: an ordinary file (a typo naming a key, say) and a socket another agent serves on.
// Both are refused and left as they were; only a socket nothing listens on is replaced.
func TestAttackListenTakesOverPath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(file, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if l, err := agent.Listen("unix:" + file); err == nil || !strings.Contains(err.Error(), "not a unix socket") {
		if l != nil {
			l.Close()
		}
		t.Errorf("Listen on an ordinary file: %v, want a refusal", err)
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != "precious\n" {
		t.Errorf("the file after Listen: %q, %v", data, err)
	}

	live := filepath.Join(dir, "live.sock")
	first, err := agent.Listen("unix:" + live)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if l, err := agent.Listen("unix:" + live); err == nil || !strings.Contains(err.Error(), "another process listens on") {
		if l != nil {
			l.Close()
		}
		t.Errorf("Listen on a socket in use: %v, want a refusal", err)
	}
	go func() { // the first listener still answers
		if c, err := first.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", live)
	if err != nil {
		t.Fatalf("the first listener's socket after a second Listen: %v", err)
	}
	c.Close()

	stale := filepath.Join(dir, "stale.sock")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ul.SetUnlinkOnClose(false) // as a killed agent leaves it
	ul.Close()
	l, err := agent.Listen("unix:" + stale)
	if err != nil {
		t.Fatalf("Listen on a stale socket: %v", err)
	}
	l.Close()
}
