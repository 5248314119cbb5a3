package agent_test

import (
	"context"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// running is an agent serving on loopback listeners for a test.
type running struct {
	a       *agent.Agent
	secret  string
	httpURL string
	grpc    vigilv1.AgentClient
	conn    *grpc.ClientConn
	stop    func() error
}

// startAgent starts an agent in dir, serving gRPC and HTTP on fresh loopback ports (or on
// httpAddr, to come back on the same address after a restart).
func startAgent(tb testing.TB, dir, httpAddr string, demo bool) *running {
	tb.Helper()
	return startAgentConfig(tb, agent.Config{Dir: dir}, httpAddr, demo)
}

// startAgentConfig is startAgent with cfg (its Dir required).
func startAgentConfig(tb testing.TB, cfg agent.Config, httpAddr string, demo bool) *running {
	tb.Helper()
	// Synthetic typing is sent faster than it was typed, so its times run ahead of the clock.
	cfg.Guard.MaxClockSkew = time.Hour
	if cfg.HeadInterval == 0 {
		cfg.HeadInterval = time.Hour
	}
	a, err := agent.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	gl, err := agent.Listen("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var hl net.Listener
	for i := 0; ; i++ { // the previous run's port may take a moment to come free
		if hl, err = agent.Listen(httpAddr); err == nil || i == 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, gl, hl, agent.HTTPOptions{DemoApp: demo}) }()
	conn, err := grpc.NewClient(gl.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	r := &running{a: a, secret: a.Secret(), httpURL: "http://" + hl.Addr().String(), grpc: vigilv1.NewAgentClient(conn), conn: conn}
	stopped := false
	r.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		conn.Close()
		cancel()
		return <-done
	}
	tb.Cleanup(func() {
		if err := r.stop(); err != nil {
			tb.Errorf("agent shutdown: %v", err)
		}
	})
	return r
}

// as returns ctx with a bearer credential.
func as(ctx context.Context, credential string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+credential)
}

// keyTimings turns a typist's keystrokes into the API's key timings, the first press at start.
func keyTimings(ks []keystroke.Keystroke, start time.Time) []*vigilv1.KeyTiming {
	out := make([]*vigilv1.KeyTiming, 0, len(ks))
	base := float64(start.UnixNano()) / 1e6
	for _, k := range ks {
		p := base + float64(k.Press-ks[0].Press)/1e6
		r := p
		if h, ok := k.Hold(); ok {
			r = p + float64(h)/1e6
		}
		out = append(out, &vigilv1.KeyTiming{PressMs: p, ReleaseMs: r, Code: uint32(k.Code)})
	}
	return out
}

// sendTyping sends keys in batches of 25 and returns the last status.
func sendTyping(tb testing.TB, c vigilv1.AgentClient, ctx context.Context, session string, keys []*vigilv1.KeyTiming) *vigilv1.SessionStatus {
	tb.Helper()
	var st *vigilv1.SessionStatus
	for i := 0; i < len(keys); i += 25 {
		r, err := c.SendEvents(ctx, &vigilv1.SendEventsRequest{Session: session, Keys: keys[i:min(i+25, len(keys))]})
		if err != nil {
			tb.Fatal(err)
		}
		st = r.Status
		if st.Revoked {
			return st // the guard terminated the session: no more events
		}
		if r.Rejected > 0 {
			tb.Fatalf("%d events rejected: %s", r.Rejected, r.RejectedReason)
		}
	}
	return st
}

func mustB64(tb testing.TB, b []byte) []byte {
	tb.Helper()
	out, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		tb.Fatal(err)
	}
	return out
}
