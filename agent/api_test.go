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
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

type httpResult struct {
	Code int
	Body map[string]any
	Head http.Header
}

func post(t *testing.T, url, credential, body string, header ...string) httpResult {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: response %q is not JSON: %v", url, data, err)
	}
	return httpResult{resp.StatusCode, m, resp.Header}
}

// Bad input over HTTP gets a 4xx JSON error naming the reason and the field.
func TestHTTPRefusesBadInput(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	api := r.httpURL + "/v1/agent/"
	start := post(t, api+"StartSession", r.secret, `{"session":"s1","user":"alice"}`)
	if start.Code != 200 {
		t.Fatalf("StartSession: %v", start)
	}
	token := start.Body["sessionToken"].(string)
	post(t, api+"StartSession", r.secret, `{"session":"s2","user":"bob"}`)
	now := float64(time.Now().UnixMilli())
	key := func(press, release float64, code int) string {
		b, _ := json.Marshal(map[string]any{"session": "s1", "keys": []map[string]any{{"pressMs": press, "releaseMs": release, "code": code}}})
		return string(b)
	}
	tests := []struct {
		name, method, cred, body string
		header                   []string
		code                     int
		reason, field            string
	}{
		{"no credential", "StartSession", "", `{"session":"x","user":"u"}`, nil, 401, agent.ReasonBadSecret, "authorization"},
		{"wrong secret", "Authorize", strings.Repeat("0", 64), `{"session":"s1","resource":"transfer"}`, nil, 401, agent.ReasonBadSecret, "authorization"},
		{"malformed JSON", "SendEvents", r.secret, `{"session":`, nil, 400, agent.ReasonInvalidField, "body"},
		{"unknown field", "SendEvents", r.secret, `{"session":"s1","kes":[]}`, nil, 400, agent.ReasonInvalidField, "kes"},
		{"release before press", "SendEvents", r.secret, key(now, now-5, 65), nil, 400, agent.ReasonInvalidField, "keys[0].release_ms"},
		{"no key code", "SendEvents", r.secret, key(now, now+80, 0), nil, 400, agent.ReasonInvalidField, "keys[0].code"},
		{"absurd time", "SendEvents", r.secret, key(12, 80, 65), nil, 400, agent.ReasonInvalidField, "keys[0].press_ms"},
		{"unknown button", "SendEvents", r.secret, `{"session":"s1","pointer":[{"atMs":` + jsonNum(now) + `,"button":"thumb","action":"move"}]}`, nil, 400, agent.ReasonInvalidField, "pointer[0].button"},
		{"bad context IP", "SendEvents", r.secret, `{"session":"s1","context":{"ip":"nowhere","localTime":"2026-01-01T10:00:00+01:00"}}`, nil, 400, agent.ReasonInvalidField, "context.ip"},
		{"context time in year 0 (found by fuzzing)", "SendEvents", r.secret, `{"session":"s1","context":{"ip":"10.0.0.1","localTime":"0000-01-01T00:00:00+00:00"}}`, nil, 400, agent.ReasonInvalidField, "context.local_time"},
		// Found by a review: answered 200 with the guard's refusal in rejectedReason, or naming
		// the body rather than the field.
		{"context latitude Infinity", "SendEvents", r.secret, `{"session":"s1","context":` + cx(`"lat":"Infinity"`) + `}`, nil, 400, agent.ReasonInvalidField, "context.lat"},
		{"context longitude beyond 180", "SendEvents", r.secret, `{"session":"s1","context":` + cx(`"lon":181`) + `}`, nil, 400, agent.ReasonInvalidField, "context.lon"},
		{"context accuracy out of range", "SendEvents", r.secret, `{"session":"s1","context":` + cx(`"accuracyKm":1e9`) + `}`, nil, 400, agent.ReasonInvalidField, "context.accuracy_km"},
		{"context without a device", "SendEvents", r.secret, `{"session":"s1","context":` + cx(`"device":""`) + `}`, nil, 400, agent.ReasonInvalidField, "context.device"},
		{"a key time beyond a double", "SendEvents", r.secret, `{"session":"s1","keys":[{"pressMs":1e400}]}`, nil, 400, agent.ReasonInvalidField, "pressMs"},
		{"missing user", "StartSession", r.secret, `{"session":"s3"}`, nil, 400, agent.ReasonInvalidField, "user"},
		{"session exists", "StartSession", r.secret, `{"session":"s1","user":"alice"}`, nil, 409, agent.ReasonSessionExists, "session"},
		{"unknown session", "SendEvents", r.secret, `{"session":"nope"}`, nil, 404, agent.ReasonUnknownSession, "session"},
		{"token of another session", "SendEvents", token, `{"session":"s2"}`, nil, 403, agent.ReasonWrongSession, "session"},
		{"token answering its own challenge", "AnswerChallenge", token, `{"session":"s1","challengeId":"1","passed":true}`, nil, 403, agent.ReasonWrongSession, "authorization"},
		{"bad verdict", "Feedback", r.secret, `{"session":"s1","verdict":"maybe"}`, nil, 400, agent.ReasonInvalidField, "verdict"},
		{"no such challenge", "AnswerChallenge", r.secret, `{"session":"s1","challengeId":"7","passed":true}`, nil, 409, agent.ReasonNoChallenge, "challenge_id"},
		{"not loopback (DNS rebinding)", "SendEvents", token, `{"session":"s1"}`, []string{"Host", "evil.example:80"}, 403, "NOT_LOOPBACK", "host"},
		{"unknown method", "DropTables", r.secret, `{}`, nil, 404, "UNKNOWN_METHOD", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := post(t, api+tc.method, tc.cred, tc.body, tc.header...)
			if got.Code != tc.code || got.Body["reason"] != tc.reason || (got.Body["field"] != nil && got.Body["field"] != tc.field) || (tc.field != "" && got.Body["field"] != tc.field) {
				t.Fatalf("got %d %v, want %d reason %s field %q", got.Code, got.Body, tc.code, tc.reason, tc.field)
			}
			if msg, _ := got.Body["error"].(string); msg == "" {
				t.Fatalf("no error message: %v", got.Body)
			}
		})
	}
	// The context the refused ones altered is taken as it is.
	if got := post(t, api+"SendEvents", r.secret, `{"session":"s1","context":`+cx("")+`}`); got.Code != 200 || got.Body["rejected"] != nil {
		t.Fatalf("a valid context: %v", got)
	}
	// The page's own token works for its own session.
	if got := post(t, api+"Authorize", token, `{"session":"s1","resource":"transfer"}`); got.Code != 200 || got.Body["outcome"] == nil {
		t.Fatalf("Authorize with the session token: %v", got)
	}
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

// cx is a valid SendEvents context as JSON, with the fields in override (JSON members)
// replacing its own.
func cx(override string) string {
	fields := map[string]json.RawMessage{"ip": json.RawMessage(`"10.0.0.1"`), "lat": json.RawMessage(`48.1`), "lon": json.RawMessage(`11.6`),
		"accuracyKm": json.RawMessage(`20`), "device": json.RawMessage(`"d"`), "network": json.RawMessage(`"n"`),
		"localTime": json.RawMessage(`"` + time.Now().Add(time.Minute).Format(time.RFC3339) + `"`)}
	var o map[string]json.RawMessage
	if err := json.Unmarshal([]byte("{"+override+"}"), &o); err != nil {
		panic(err)
	}
	for k, v := range o {
		fields[k] = v
	}
	b, _ := json.Marshal(fields)
	return string(b)
}

// A flood of events is refused with RESOURCE_EXHAUSTED and a retry delay, and Authorize keeps
// answering at once meanwhile.
func TestFloodIsRefusedAndNeverBlocksAuthorize(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s", User: "u"}); err != nil {
		t.Fatal(err)
	}
	big := make([]*vigilv1.PointerSample, agent.MaxBatchEvents+1)
	base := float64(time.Now().UnixMilli())
	for i := range big {
		big[i] = &vigilv1.PointerSample{AtMs: base + float64(i)/10, X: int32(i % 500), Y: 10, Button: "none", Action: "move"}
	}
	_, err := r.grpc.SendEvents(ctx, &vigilv1.SendEventsRequest{Session: "s", Pointer: big})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("an oversized batch: %v", err)
	}
	batch := big[:agent.MaxBatchEvents]
	var limited error
	for i := 0; i < 10 && limited == nil; i++ {
		for _, p := range batch {
			p.AtMs += 1000
		}
		_, limited = r.grpc.SendEvents(ctx, &vigilv1.SendEventsRequest{Session: "s", Pointer: batch})
	}
	if status.Code(limited) != codes.ResourceExhausted || vigilv1.Reason(limited) != agent.ReasonRateLimited {
		t.Fatalf("a flood of %d events: %v", 10*len(batch), limited)
	}
	t0 := time.Now()
	d, err := r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: "s", Resource: "transfer"})
	if err != nil || d.Outcome == "" {
		t.Fatalf("Authorize during a flood: %v %v", d, err)
	}
	t.Logf("Authorize during a flood answered in %v: %s", time.Since(t0), d.Explanation)
	if _, err := r.grpc.Authorize(context.Background(), &vigilv1.AuthorizeRequest{Session: "s", Resource: "transfer"}); status.Code(err) != codes.Unauthenticated || vigilv1.Reason(err) != agent.ReasonBadSecret {
		t.Fatalf("gRPC without the secret: %v", err)
	}
}

// A user enrolled in one run of the agent keeps their model, baseline and history in the next;
// the state on disk is encrypted, and a tampered state or a key file others can read is
// refused. The audit log verifies against the exported signed head.
func TestRestartKeepsEnrolmentAndBaseline(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	owner := keystroke.NewTypist(1)
	st, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "first", User: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Enrolment.Enrolled || st.Trust != 75 {
		t.Fatalf("a new user: %v", st)
	}
	typing := keyTimings(owner.Type(600), time.Now())
	sendTyping(t, r.grpc, ctx, "first", typing[:300])
	r.a.WaitEnrolments()
	if !r.a.Enrolled("carol") {
		t.Fatal("not enrolled after 300 keystrokes")
	}
	st = sendTyping(t, r.grpc, ctx, "first", typing[300:])
	t.Logf("after enrolment and 300 more keystrokes of the owner: trust %.1f %s", st.Trust, st.Tier)
	if _, err := r.grpc.EndSession(ctx, &vigilv1.EndSessionRequest{Session: "first"}); err != nil {
		t.Fatal(err)
	}
	head, err := r.a.SignedHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, agent.StateFile))
	if bytes.Contains(raw, []byte("carol")) {
		t.Fatal("the state file holds the user's name in the clear")
	}

	r2 := startAgent(t, dir, "", false)
	if !r2.a.Enrolled("carol") || len(r2.a.History("carol")) != 1 {
		t.Fatalf("after a restart: enrolled %v, history %v", r2.a.Enrolled("carol"), r2.a.History("carol"))
	}
	ctx2 := as(context.Background(), r2.secret)
	st2, err := r2.grpc.StartSession(ctx2, &vigilv1.StartSessionRequest{Session: "second", User: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !st2.Enrolment.Enrolled || st2.Trust <= 75 {
		t.Fatalf("the second session starts as a stranger's: %v", st2)
	}
	typing = keyTimings(owner.Type(150), time.Now())
	st2 = sendTyping(t, r2.grpc, ctx2, "second", typing)
	last := time.UnixMilli(int64(typing[len(typing)-1].ReleaseMs)).Add(time.Second)
	other := sendTyping(t, r2.grpc, ctx2, "second", keyTimings(keystroke.NewTypist(2).Type(150), last))
	t.Logf("after the restart: owner %.1f %s, then someone else %.1f %s", st2.Trust, st2.Tier, other.Trust, other.Tier)
	if st2.Trust < 70 || other.Trust >= 60 {
		t.Fatalf("the restored model does not tell the owner (%.1f) from another typist (%.1f)", st2.Trust, other.Trust)
	}
	r2.stop()

	// The audit log of both runs verifies, and against the head exported in the first.
	logPath, pubPath := r2.a.AuditPaths()
	f, _ := os.Open(logPath)
	defer f.Close()
	pub, _ := os.ReadFile(pubPath)
	v, err := audit.ParseMLDSA65PublicKey(mustB64(t, pub))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyAgainst(f, v, audit.Head{Seq: head.Seq, Hash: head.Hash, Time: head.Time})
	if err != nil || rep.Decisions+rep.SessionEvents == 0 {
		t.Fatalf("audit log: %+v %v", rep, err)
	}
	// The same log and a fresh head over the HTTP face, for export.
	r3 := startAgent(t, dir, "", false)
	req, _ := http.NewRequest("GET", r3.httpURL+"/v1/audit/log", nil)
	req.Header.Set("Authorization", "Bearer "+r3.secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	exported, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rep2, err := audit.VerifyAgainst(bytes.NewReader(exported), v, audit.Head{Seq: head.Seq, Hash: head.Hash, Time: head.Time}); err != nil || rep2.Head.Seq <= head.Seq {
		t.Fatalf("the exported log: %+v %v", rep2, err)
	}
	req, _ = http.NewRequest("GET", r3.httpURL+"/v1/history?user=carol", nil)
	req.Header.Set("Authorization", "Bearer "+r3.secret)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var hist []agent.SessionSummary
	json.NewDecoder(resp.Body).Decode(&hist)
	resp.Body.Close()
	// "second" was open when r2 stopped: r3 restored it, so it is not in the history as ended.
	if len(hist) != 1 || hist[0].Session != "first" || hist[0].EndedByShutdown {
		t.Fatalf("history over HTTP: %+v", hist)
	}
	if _, err := r3.grpc.SendEvents(as(context.Background(), r3.secret), &vigilv1.SendEventsRequest{Session: "second"}); err != nil {
		t.Fatalf("the session open at the restart: %v", err)
	}
	r3.stop()

	// Tampering and loose permissions are refused.
	bad := append([]byte(nil), raw...)
	bad[len(bad)-1] ^= 1
	os.WriteFile(filepath.Join(dir, agent.StateFile), bad, 0o600)
	if _, err := agent.New(agent.Config{Dir: dir}); !errors.Is(err, agent.ErrState) {
		t.Fatalf("a tampered state: %v", err)
	}
	os.WriteFile(filepath.Join(dir, agent.StateFile), raw, 0o600)
	os.Chmod(filepath.Join(dir, agent.DeviceKeyFile), 0o644)
	if _, err := agent.New(agent.Config{Dir: dir}); !errors.Is(err, agent.ErrState) {
		t.Fatalf("a device key readable by others: %v", err)
	}
}

// What a passed challenge teaches a user's model survives a restart: the agent keeps the
// session's windows the verdict covered and replays them into the refitted model.
func TestPassedChallengeTeachingSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "a", User: "fay"}); err != nil {
		t.Fatal(err)
	}
	sendTyping(t, r.grpc, ctx, "a", keyTimings(keystroke.NewTypist(1).Type(300), time.Now()))
	r.a.WaitEnrolments()
	// The owner's typing has changed (typist 4 stands in for it): challenged, and passed.
	drifted := keystroke.NewTypist(4)
	typing := keyTimings(drifted.Type(200), time.Now().Add(10*time.Minute))
	var st *vigilv1.SessionStatus
	for i := 0; i < len(typing); i += 25 {
		resp, err := r.grpc.SendEvents(ctx, &vigilv1.SendEventsRequest{Session: "a", Keys: typing[i : i+25]})
		if err != nil {
			t.Fatal(err)
		}
		if st = resp.Status; st.Challenge != nil {
			break
		}
	}
	if st.Challenge == nil {
		t.Fatalf("the drifted typing was not challenged: trust %.1f", st.Trust)
	}
	if _, err := r.grpc.AnswerChallenge(ctx, &vigilv1.AnswerChallengeRequest{Session: "a", ChallengeId: st.Challenge.Id, Passed: true}); err != nil {
		t.Fatal(err)
	}
	learnt := r.a.Learnt("fay")
	if learnt == 0 {
		t.Fatal("a passed challenge kept no windows to relearn")
	}
	r.stop()
	r2 := startAgent(t, dir, "", false)
	if got := r2.a.Learnt("fay"); got != learnt {
		t.Fatalf("%d learnt windows before the restart, %d after", learnt, got)
	}
	t.Logf("%d windows taught by the passed challenge kept across the restart", learnt)
}
