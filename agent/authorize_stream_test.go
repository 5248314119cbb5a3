package agent_test

import (
	"context"
	"encoding/json"
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
