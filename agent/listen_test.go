package agent_test

import (
	"context"
	"os"
	"path/filepath"
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
