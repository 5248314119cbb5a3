package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// WatchSession streams the status at once and on every change, over gRPC and over a
// WebSocket authenticated by the session token; the stream ends with the session.
func TestWatchSession(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	ctx := as(context.Background(), r.secret)
	st, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "w", User: "dora"})
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	stream, err := r.grpc.WatchSession(wctx, &vigilv1.WatchSessionRequest{Session: "w"})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil || first.Trust != st.Trust {
		t.Fatalf("first status %v, %v", first, err)
	}

	ws, err := websocket.Dial(strings.Replace(r.httpURL, "http", "ws", 1)+"/v1/agent/WatchSession?session=w&token="+st.SessionToken, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var msg string
	if err := websocket.Message.Receive(ws, &msg); err != nil {
		t.Fatal(err)
	}
	var wsFirst struct{ Session, Tier string }
	if err := json.Unmarshal([]byte(msg), &wsFirst); err != nil || wsFirst.Session != "w" || wsFirst.Tier != "monitor" {
		t.Fatalf("WebSocket status %q: %v", msg, err)
	}

	// Typing moves the enrolment on: both watchers hear of it.
	sendTyping(t, r.grpc, ctx, "w", keyTimings(keystroke.NewTypist(3).Type(60), time.Now()))
	next, err := stream.Recv()
	if err != nil || next.Enrolment.Windows == 0 {
		t.Fatalf("after typing: %v, %v", next, err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := websocket.Message.Receive(ws, &msg); err != nil || !strings.Contains(msg, `"windows":1`) {
		t.Fatalf("WebSocket after typing: %q %v", msg, err)
	}

	if _, err := r.grpc.EndSession(ctx, &vigilv1.EndSessionRequest{Session: "w"}); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("the stream of an ended session: %v", err)
	}
	bad, err := websocket.Dial(strings.Replace(r.httpURL, "http", "ws", 1)+"/v1/agent/WatchSession?session=w&token=nope", "", "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := websocket.Message.Receive(bad, &msg); err != nil || !strings.Contains(msg, "BAD_SECRET") {
		t.Fatalf("a WebSocket with a wrong token: %q %v", msg, err)
	}
}
