package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/guard"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// AuthorizeStream answers each request as Authorize does, in order, and a request Authorize
// refuses ends the stream with Authorize's error.
func TestAuthorizeStream(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	app := as(context.Background(), r.secret)
	st, err := r.grpc.StartSession(app, &vigilv1.StartSessionRequest{Session: "s", User: "ida"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.grpc.StartSession(app, &vigilv1.StartSessionRequest{Session: "other", User: "ada"}); err != nil {
		t.Fatal(err)
	}
	page := as(context.Background(), st.SessionToken)

	t.Run("answers as Authorize, in order", func(t *testing.T) {
		s, err := r.grpc.AuthorizeStream(app)
		if err != nil {
			t.Fatal(err)
		}
		reqs := []*vigilv1.AuthorizeRequest{
			{Session: "s", Resource: "profile.read"},
			{Session: "s", Resource: "admin"},
			{Session: "nobody", Resource: "profile.read"},
			{Session: "s", Resource: "no.such.resource"},
		}
		for _, req := range reqs {
			if err := s.Send(req); err != nil {
				t.Fatal(err)
			}
		}
		for _, req := range reqs {
			got, err := s.Recv()
			if err != nil {
				t.Fatal(err)
			}
			want, err := r.grpc.Authorize(app, req)
			if err != nil {
				t.Fatal(err)
			}
			if got.Allow != want.Allow || got.Outcome != want.Outcome || got.Required != want.Required {
				t.Errorf("%s on %s: the stream said %v %q (required %v), Authorize %v %q (required %v)",
					req.Resource, req.Session, got.Allow, got.Outcome, got.Required, want.Allow, want.Outcome, want.Required)
			}
		}
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); err == nil || !strings.Contains(err.Error(), "EOF") {
			t.Fatalf("after CloseSend: %v, want the stream's end", err)
		}
	})

	tests := []struct {
		name     string
		ctx      context.Context
		ownFirst bool // ask about session s first, which the caller may
		req      *vigilv1.AuthorizeRequest
		code     codes.Code
		reason   string
	}{
		{"no credential", context.Background(), false, &vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"}, codes.Unauthenticated, agent.ReasonBadSecret},
		{"a wrong secret", as(context.Background(), strings.Repeat("x", len(r.secret))), false, &vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"}, codes.Unauthenticated, agent.ReasonBadSecret},
		{"a page token asking about another session", page, true, &vigilv1.AuthorizeRequest{Session: "other", Resource: "profile.read"}, codes.PermissionDenied, agent.ReasonWrongSession},
		{"a resource over the limit", app, true, &vigilv1.AuthorizeRequest{Session: "s", Resource: strings.Repeat("r", guard.MaxResourceBytes+1)}, codes.InvalidArgument, agent.ReasonInvalidField},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := r.grpc.AuthorizeStream(tt.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.ownFirst {
				if err := s.Send(&vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"}); err != nil {
					t.Fatal(err)
				}
				if d, err := s.Recv(); err != nil || d.Outcome == "" {
					t.Fatalf("the page's own session: %v %v", d, err)
				}
			}
			s.Send(tt.req) // an error here is the stream's end, which Recv reports
			_, err = s.Recv()
			if status.Code(err) != tt.code || vigilv1.Reason(err) != tt.reason {
				t.Fatalf("got %v, want %v with reason %s", err, tt.code, tt.reason)
			}
		})
	}

	t.Run("over a WebSocket", func(t *testing.T) {
		ws, err := websocket.Dial(strings.Replace(r.httpURL, "http", "ws", 1)+"/v1/agent/AuthorizeStream?token="+st.SessionToken, "", "http://127.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetDeadline(time.Now().Add(20 * time.Second))
		want, err := r.grpc.Authorize(page, &vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"})
		if err != nil {
			t.Fatal(err)
		}
		var answer struct {
			Outcome, Reason string
		}
		for _, tt := range []struct{ req, outcome, reason string }{
			{`{"session":"s","resource":"profile.read"}`, "", ""},
			{`{"session":"s","resource":"admin"}`, "", ""},
			{`{"session":"s","resource":1}`, "", agent.ReasonInvalidField},
		} {
			if err := websocket.Message.Send(ws, tt.req); err != nil {
				t.Fatal(err)
			}
			var msg string
			if err := websocket.Message.Receive(ws, &msg); err != nil {
				t.Fatal(err)
			}
			answer.Outcome, answer.Reason = "", ""
			if err := json.Unmarshal([]byte(msg), &answer); err != nil {
				t.Fatalf("%s: %q: %v", tt.req, msg, err)
			}
			switch {
			case tt.reason != "" && answer.Reason != tt.reason:
				t.Fatalf("%s: %q, want the error %s", tt.req, msg, tt.reason)
			case tt.reason == "" && answer.Outcome == "":
				t.Fatalf("%s: %q, want a decision", tt.req, msg)
			case tt.req == `{"session":"s","resource":"profile.read"}` && answer.Outcome != want.Outcome:
				t.Fatalf("%s: outcome %q, Authorize says %q", tt.req, answer.Outcome, want.Outcome)
			}
		}
		var msg string
		if err := websocket.Message.Receive(ws, &msg); err == nil {
			t.Fatalf("after a refused request the WebSocket went on: %q", msg)
		}
	})

	t.Run("a page's token ends with its session", func(t *testing.T) {
		st, err := r.grpc.StartSession(app, &vigilv1.StartSessionRequest{Session: "restarted", User: "ida"})
		if err != nil {
			t.Fatal(err)
		}
		page := as(context.Background(), st.SessionToken)
		s, err := r.grpc.AuthorizeStream(page)
		if err != nil {
			t.Fatal(err)
		}
		ws, err := websocket.Dial(strings.Replace(r.httpURL, "http", "ws", 1)+"/v1/agent/AuthorizeStream?token="+st.SessionToken, "", "http://127.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetDeadline(time.Now().Add(20 * time.Second))
		req := &vigilv1.AuthorizeRequest{Session: "restarted", Resource: "profile.read"}
		ask := func() (grpcErr error, wsAnswer string) {
			s.Send(req) // an error here is the stream's end, which Recv reports
			_, grpcErr = s.Recv()
			if err := websocket.Message.Send(ws, `{"session":"restarted","resource":"profile.read"}`); err != nil {
				t.Fatal(err)
			}
			if err := websocket.Message.Receive(ws, &wsAnswer); err != nil {
				t.Fatal(err)
			}
			return grpcErr, wsAnswer
		}
		if err, answer := ask(); err != nil || !strings.Contains(answer, "outcome") {
			t.Fatalf("before the session ended: %v, %q", err, answer)
		}
		// The application ends the session and starts it again, with a new token.
		if _, err := r.grpc.EndSession(app, &vigilv1.EndSessionRequest{Session: "restarted"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.grpc.StartSession(app, &vigilv1.StartSessionRequest{Session: "restarted", User: "ida"}); err != nil {
			t.Fatal(err)
		}
		err, answer := ask()
		if status.Code(err) != codes.Unauthenticated || vigilv1.Reason(err) != agent.ReasonBadSecret {
			t.Errorf("the old token on its stream after the session restarted: %v, want Unauthenticated", err)
		}
		if !strings.Contains(answer, agent.ReasonBadSecret) {
			t.Errorf("the old token on its WebSocket after the session restarted: %q, want %s", answer, agent.ReasonBadSecret)
		}
	})

	t.Run("a WebSocket request over the size limit", func(t *testing.T) {
		ws, err := websocket.Dial(strings.Replace(r.httpURL, "http", "ws", 1)+"/v1/agent/AuthorizeStream?token="+r.secret, "", "http://127.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetDeadline(time.Now().Add(20 * time.Second))
		if err := websocket.Message.Send(ws, `{"session":"s","resource":"`+strings.Repeat("r", agent.MaxBodyBytes)+`"}`); err != nil {
			t.Fatal(err)
		}
		var msg string
		if err := websocket.Message.Receive(ws, &msg); err != nil || !strings.Contains(msg, agent.ReasonInvalidField) {
			t.Fatalf("got %q, %v; want an INVALID_FIELD error", msg, err)
		}
	})

	t.Run("the agent's shutdown ends a WebSocket", func(t *testing.T) {
		r := startAgent(t, t.TempDir(), "", false)
		ws, err := websocket.Dial(strings.Replace(r.httpURL, "http", "ws", 1)+"/v1/agent/AuthorizeStream?token="+r.secret, "", "http://127.0.0.1/")
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		ws.SetDeadline(time.Now().Add(20 * time.Second))
		var msg string
		if err := websocket.Message.Receive(ws, &msg); err == nil {
			t.Fatalf("the WebSocket answered after the agent stopped: %q", msg)
		} else if strings.Contains(err.Error(), "timeout") {
			t.Fatal("the WebSocket was still open 20 s after the agent stopped")
		}
	})
}

// TestAttackPageFloodsAuthorize: a script in the protected page, holding its session token,
// asks Authorize in a loop to fill the device's audit log. Beyond the page's allowance its
// calls are refused RESOURCE_EXHAUSTED with a retry delay and leave no decision in the log,
// while the application's own calls, with the install secret, are never bounded.
func TestAttackPageFloodsAuthorize(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	app := as(context.Background(), r.secret)
	st, err := r.grpc.StartSession(app, &vigilv1.StartSessionRequest{Session: "s", User: "ida"})
	if err != nil {
		t.Fatal(err)
	}
	page := as(context.Background(), st.SessionToken)
	req := &vigilv1.AuthorizeRequest{Session: "s", Resource: "profile.read"}
	start := time.Now()
	var answered, refused int
	stream, err := r.grpc.AuthorizeStream(page)
	if err != nil {
		t.Fatal(err)
	}
	for range 1000 {
		_, err := r.grpc.Authorize(page, req)
		switch {
		case err == nil:
			answered++
		case status.Code(err) == codes.ResourceExhausted && vigilv1.Reason(err) == agent.ReasonRateLimited:
			refused++
		default:
			t.Fatalf("unary call %d: %v", answered+refused, err)
		}
	}
	// The same allowance holds on a stream, which the refusal ends. What the allowance refilled
	// while the flood ran (slowly, under the race detector) is answered first, and counted.
	for {
		if err := stream.Send(req); err != nil {
			t.Fatalf("the page's stream after the flood: %v", err)
		}
		_, err := stream.Recv()
		if err == nil && answered < 1000 {
			answered++
			continue
		}
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("the page's stream after the flood: %v, want RESOURCE_EXHAUSTED", err)
		}
		break
	}
	elapsed := time.Since(start)
	allowance := agent.PageAuthorizeBurst + int(elapsed.Seconds()*agent.PageAuthorizePerSecond) + 1
	if answered > allowance || refused == 0 {
		t.Fatalf("the page got %d of 1,000 calls answered in %v (allowance %d), %d refused", answered, elapsed.Round(time.Millisecond), allowance, refused)
	}
	for i := range 300 {
		if _, err := r.grpc.Authorize(app, req); err != nil {
			t.Fatalf("the application's call %d during the flood: %v", i, err)
		}
	}
	t.Logf("page: %d answered, %d refused in %v; the application's 300 calls all answered", answered, refused, elapsed.Round(time.Millisecond))
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(filepath.Join(dir, agent.AuditLogFile))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(log, []byte(`"profile.read"`)); n != answered+300 {
		t.Fatalf("the audit log holds %d decisions, want the %d answered", n, answered+300)
	}
}
