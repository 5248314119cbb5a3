package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/websocket"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// reasonOf returns err's gRPC code and ErrorInfo reason.
func reasonOf(err error) (codes.Code, string) {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return st.Code(), info.Reason
		}
	}
	return st.Code(), ""
}

// statusOf asks the agent for a session's status (an empty batch) with credential.
func statusOf(t *testing.T, r *running, credential, session string) *vigilv1.SessionStatus {
	t.Helper()
	resp, err := r.grpc.SendEvents(as(context.Background(), credential), &vigilv1.SendEventsRequest{Session: session})
	if err != nil {
		t.Fatalf("status of %q: %v", session, err)
	}
	return resp.Status
}

// Sessions open when the agent stops continue when it starts again: the same ID, the same
// trust and tier, the same answer from Authorize, the page token still good over gRPC, HTTP
// and the WebSocket; a revoked session stays revoked; a session older than
// MaxRestoredSessionAge is gone with a reason and is in its user's history.
func TestRestartKeepsOpenSessions(t *testing.T) {
	dir := t.TempDir()
	var offset atomic.Int64 // the first run's clock, moved back to open a session long ago
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	r := startAgentConfig(t, agent.Config{Dir: dir, Clock: clock}, "", false)
	ctx := as(context.Background(), r.secret)

	offset.Store(int64(-agent.MaxRestoredSessionAge - time.Hour))
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "old", User: "gus"}); err != nil {
		t.Fatal(err)
	}
	offset.Store(0)

	owner := keystroke.NewTypist(1)
	t0 := time.Now()
	st, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "kept", User: "dora"})
	if err != nil {
		t.Fatal(err)
	}
	token, t1 := st.SessionToken, time.Now()
	typing := keyTimings(owner.Type(600), time.Now())
	sendTyping(t, r.grpc, ctx, "kept", typing[:300])
	r.a.WaitEnrolments()
	sendTyping(t, r.grpc, ctx, "kept", typing[300:])
	page := as(context.Background(), token)
	before := statusOf(t, r, token, "kept")
	if before.Trust <= 75 || before.Tier != "monitor" {
		t.Fatalf("the owner earned no trust before the restart: %v", before)
	}
	d1, err := r.grpc.Authorize(page, &vigilv1.AuthorizeRequest{Session: "kept", Resource: "transfer"})
	if err != nil {
		t.Fatal(err)
	}

	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "bad", User: "erin"}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.grpc.Feedback(ctx, &vigilv1.FeedbackRequest{Session: "bad", Verdict: "compromised"}); err != nil {
		t.Fatal(err)
	}
	// A session charged for a new device is not charged for it again after the restart.
	seenOn := func(r *running, device string) *vigilv1.SessionStatus {
		t.Helper()
		resp, err := r.grpc.SendEvents(ctx2(r), &vigilv1.SendEventsRequest{Session: "moved", Context: &vigilv1.ContextInfo{
			Ip: "198.51.100.7", Lat: 60.17, Lon: 24.94, Device: device, Network: "home", LocalTime: time.Now().Format(time.RFC3339Nano)}})
		if err != nil || resp.Rejected > 0 {
			t.Fatalf("context on %s: %v %s", device, err, resp.GetRejectedReason())
		}
		return resp.Status
	}
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "moved", User: "finn"}); err != nil {
		t.Fatal(err)
	}
	first := seenOn(r, "laptop") // the user's first device is learned
	charged := seenOn(r, "phone")
	if charged.Trust >= first.Trust {
		t.Fatalf("a new device was not charged: %v after %v", charged, first)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, agent.StateFile))
	if bytes.Contains(raw, []byte(token)) || bytes.Contains(raw, []byte("dora")) {
		t.Fatal("the state file holds a page token or a user's name in the clear")
	}

	// A state file altered by one bit (say, to raise a saved trust) does not load at all.
	bad := append([]byte(nil), raw...)
	bad[len(bad)/2] ^= 1
	os.WriteFile(filepath.Join(dir, agent.StateFile), bad, 0o600)
	if _, err := agent.New(agent.Config{Dir: dir}); !errors.Is(err, agent.ErrState) {
		t.Fatalf("a tampered state with open sessions: %v", err)
	}
	os.WriteFile(filepath.Join(dir, agent.StateFile), raw, 0o600)

	r2 := startAgent(t, dir, "", false)
	after := statusOf(t, r2, token, "kept") // the page token authenticates over gRPC
	t.Logf("before the restart: trust %.2f %s; after: %.2f %s", before.Trust, before.Tier, after.Trust, after.Tier)
	// The guard's trust does not decay with time: the restart costs none, and gains none.
	if after.Trust != before.Trust || after.Tier != before.Tier || after.Revoked || !after.Enrolment.Enrolled {
		t.Fatalf("the session after the restart: %v, before: %v", after, before)
	}
	d2, err := r2.grpc.Authorize(as(context.Background(), token), &vigilv1.AuthorizeRequest{Session: "kept", Resource: "transfer"})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Allow != d1.Allow || d2.Outcome != d1.Outcome || d2.Trust != d1.Trust || d2.Tier != d1.Tier {
		t.Fatalf("Authorize answers %v after the restart, %v before", d2, d1)
	}
	// The page token over HTTP and the WebSocket.
	req, _ := http.NewRequest("POST", r2.httpURL+"/v1/agent/Authorize", strings.NewReader(`{"session":"kept","resource":"transfer"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || bytes.Contains(body, []byte(`"allow":true`)) != d1.Allow {
		t.Fatalf("Authorize over HTTP with the page token: %d %s", resp.StatusCode, body)
	}
	ws, err := websocket.Dial(strings.Replace(r2.httpURL, "http", "ws", 1)+"/v1/agent/WatchSession?session=kept&token="+token, "", "http://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var msg string
	if err := websocket.Message.Receive(ws, &msg); err != nil {
		t.Fatal(err)
	}
	ws.Close()
	var watched struct {
		Session, Tier string
		Trust         float64
	}
	if err := json.Unmarshal([]byte(msg), &watched); err != nil || watched.Session != "kept" || watched.Trust != before.Trust {
		t.Fatalf("WebSocket status with the page token after the restart %q: %v", msg, err)
	}

	if again := seenOn(r2, "phone"); again.Trust != charged.Trust {
		t.Fatalf("the new device charged again after the restart: trust %.2f, %.2f before", again.Trust, charged.Trust)
	}

	// The revoked session stays revoked.
	if bad := statusOf(t, r2, r2.secret, "bad"); !bad.Revoked || bad.Tier != "terminate" || bad.Trust != 0 {
		t.Fatalf("a revoked session after the restart: %v", bad)
	}
	if d, err := r2.grpc.Authorize(as(context.Background(), r2.secret), &vigilv1.AuthorizeRequest{Session: "bad", Resource: "transfer"}); err != nil || d.Allow {
		t.Fatalf("Authorize of the revoked session after the restart: %v %v", d, err)
	}

	// The session past the age bound is gone, with a reason, and in its user's history.
	_, err = r2.grpc.SendEvents(as(context.Background(), r2.secret), &vigilv1.SendEventsRequest{Session: "old"})
	if code, reason := reasonOf(err); code != codes.NotFound || reason != agent.ReasonSessionExpired || !strings.Contains(err.Error(), "beyond") {
		t.Fatalf("the session past the age bound: %v", err)
	}
	if h := r2.a.History("gus"); len(h) != 1 || h[0].Session != "old" || !h[0].EndedByShutdown {
		t.Fatalf("the dropped session's history: %+v", h)
	}
	if h := r2.a.History("dora"); len(h) != 0 {
		t.Fatalf("a restored session is in the history as ended: %+v", h)
	}

	// The session goes on: the owner's typing keeps it in good standing, and its counts and
	// start carry over to the history when it ends.
	more := sendTyping(t, r2.grpc, ctx2(r2), "kept", keyTimings(owner.Type(150), time.UnixMilli(int64(typing[len(typing)-1].ReleaseMs)).Add(time.Second)))
	if more.Trust < before.Trust-5 || more.Tier != "monitor" {
		t.Fatalf("the owner's typing after the restart: %v", more)
	}
	if _, err := r2.grpc.EndSession(ctx2(r2), &vigilv1.EndSessionRequest{Session: "kept"}); err != nil {
		t.Fatal(err)
	}
	h := r2.a.History("dora")
	if len(h) != 1 || h[0].Allowed+h[0].Denied != 3 || h[0].EndedByShutdown || h[0].Start.Before(t0) || h[0].Start.After(t1) {
		t.Fatalf("the restored session's history: %+v", h)
	}
	r2.stop()

	// Once ended, the session does not come back.
	r3 := startAgent(t, dir, "", false)
	if _, err := r3.grpc.SendEvents(as(context.Background(), r3.secret), &vigilv1.SendEventsRequest{Session: "kept"}); status.Code(err) != codes.NotFound {
		t.Fatalf("an ended session after another restart: %v", err)
	}
	if _, err := r3.grpc.SendEvents(as(context.Background(), token), &vigilv1.SendEventsRequest{Session: "kept"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("an ended session's page token after another restart: %v", err)
	}
}

func ctx2(r *running) context.Context { return as(context.Background(), r.secret) }
