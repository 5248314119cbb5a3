package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// latencies collects per-call latencies and reports their median and 99th percentile.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	q := func(p float64) float64 { return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / 1e3 }
	b.ReportMetric(q(0.5), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// benchTyping is a pool of sessions of one enrolled user, each typing its own stream, sent in
// batches shaped like the capture script's: a 250 ms flush of 4 keystrokes and 30 pointer
// samples. Sessions are rotated so that no one session exceeds the agent's event rate limit.
type benchTyping struct {
	r      *running
	ctx    context.Context
	owner  *keystroke.Typist
	next   int
	sess   []*benchSession
	serial int
}

type benchSession struct {
	id   string
	keys []*vigilv1.KeyTiming
	pos  int
}

const benchSessions = 32

func newBenchTyping(b testing.TB) *benchTyping {
	// The batches' pointer samples (straight lines, not a person's movement) are gathered for a
	// mouse enrolment, as a user's are until they have a mouse model, which they never complete.
	r := startAgentConfig(b, agent.Config{Dir: b.TempDir(), MouseEnrolActions: 10000}, "", false)
	ctx := as(context.Background(), r.secret)
	bt := &benchTyping{r: r, ctx: ctx, owner: keystroke.NewTypist(1)}
	// Enrol the user first.
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "enrol", User: "u"}); err != nil {
		b.Fatal(err)
	}
	sendTyping(b, r.grpc, ctx, "enrol", keyTimings(bt.owner.Type(300), time.Now()))
	r.a.WaitEnrolments()
	if !r.a.Enrolled("u") {
		b.Fatal("not enrolled")
	}
	for range benchSessions {
		bt.sess = append(bt.sess, bt.open(b))
	}
	return bt
}

func (bt *benchTyping) open(b testing.TB) *benchSession {
	bt.serial++
	s := &benchSession{id: fmt.Sprintf("s%d", bt.serial), keys: keyTimings(bt.owner.Type(400), time.Now())}
	if _, err := bt.r.grpc.StartSession(bt.ctx, &vigilv1.StartSessionRequest{Session: s.id, User: "u"}); err != nil {
		b.Fatal(err)
	}
	return s
}

// batch returns the next batch of a session, opening a fresh session when one has typed all.
func (bt *benchTyping) batch(b *testing.B) *vigilv1.SendEventsRequest {
	i := bt.next % len(bt.sess)
	bt.next++
	s := bt.sess[i]
	if s.pos+4 > len(s.keys) {
		bt.r.grpc.EndSession(bt.ctx, &vigilv1.EndSessionRequest{Session: s.id})
		s = bt.open(b)
		bt.sess[i] = s
	}
	keys := s.keys[s.pos : s.pos+4]
	s.pos += 4
	req := &vigilv1.SendEventsRequest{Session: s.id, Keys: keys}
	t0 := keys[0].PressMs
	for j := range 30 {
		req.Pointer = append(req.Pointer, &vigilv1.PointerSample{AtMs: t0 + float64(j)*8, X: int32(100 + j), Y: 200, Button: "none", Action: "move"})
	}
	return req
}

// BenchmarkEventsToTrustGRPC: one batch of events in, the updated trust out, over local gRPC.
func BenchmarkEventsToTrustGRPC(b *testing.B) {
	bt := newBenchTyping(b)
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := bt.batch(b)
		t0 := time.Now()
		resp, err := bt.r.grpc.SendEvents(bt.ctx, req)
		lat = append(lat, time.Since(t0))
		if err != nil || resp.Rejected > 0 {
			b.Fatal(err, resp.GetRejectedReason())
		}
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkEventsToTrustHTTP: the same over the HTTP/JSON face, as the capture script sends.
func BenchmarkEventsToTrustHTTP(b *testing.B) {
	bt := newBenchTyping(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	lat := make(latencies, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		body, _ := protojson.Marshal(bt.batch(b))
		req, _ := http.NewRequest("POST", bt.r.httpURL+"/v1/agent/SendEvents", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+bt.r.secret)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		lat = append(lat, time.Since(t0))
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
	b.StopTimer()
	lat.report(b)
}

// BenchmarkAuthorizeGRPC: Authorize over local gRPC.
func BenchmarkAuthorizeGRPC(b *testing.B) {
	bt := newBenchTyping(b)
	benchAuthorize(b, nil, 0, bt.r.grpc, bt.ctx, bt.sess[0].id)
}

// BenchmarkAuthorizeInProcess: Authorize on the agent's guard from an application in the same
// process, with the agent's audit recorder attached.
func BenchmarkAuthorizeInProcess(b *testing.B) {
	bt := newBenchTyping(b)
	g := bt.r.a.Guard()
	ctx := context.Background()
	id := bt.sess[0].id
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if d := g.Authorize(ctx, id, "transfer"); !d.Allow {
			b.Fatal(d.Explain())
		}
	}
}

// TestAuthorizeInProcessAllocatesNothing holds the in-process target as a test.
func TestAuthorizeInProcessAllocatesNothing(t *testing.T) {
	r := startAgent(t, t.TempDir(), "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s", User: "u"}); err != nil {
		t.Fatal(err)
	}
	g := r.a.Guard()
	bg := context.Background()
	if n := testing.AllocsPerRun(1000, func() { g.Authorize(bg, "s", "transfer") }); n != 0 {
		t.Fatalf("%.1f allocations per Authorize", n)
	}
}
