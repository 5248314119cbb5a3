package agent

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// BenchmarkSendEventsHandler is BenchmarkEventsToTrustGRPC without the transport: the agent's
// own work for a batch of 4 keystrokes and 30 pointer samples (checks, conversion, the guard's
// scoring and trust, the status), on an enrolled user's sessions.
func BenchmarkSendEventsHandler(b *testing.B) {
	a, err := New(Config{Dir: b.TempDir(), Guard: guard.Config{MaxClockSkew: time.Hour}, MouseEnrolActions: 10000})
	if err != nil {
		b.Fatal(err)
	}
	ctx := withCaller(context.Background(), caller{admin: true})
	owner := keystroke.NewTypist(1)
	keys := func(n int) []*vigilv1.KeyTiming {
		ks := owner.Type(n)
		base := float64(time.Now().UnixNano()) / 1e6
		out := make([]*vigilv1.KeyTiming, len(ks))
		for i, k := range ks {
			p := base + float64(k.Press-ks[0].Press)/1e6
			r := p
			if h, ok := k.Hold(); ok {
				r += float64(h) / 1e6
			}
			out[i] = &vigilv1.KeyTiming{PressMs: p, ReleaseMs: r, Code: uint32(k.Code)}
		}
		return out
	}
	a.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "enrol", User: "u"})
	enrol := keys(300)
	for i := 0; i < len(enrol); i += 25 {
		a.SendEvents(ctx, &vigilv1.SendEventsRequest{Session: "enrol", Keys: enrol[i : i+25]})
	}
	a.WaitEnrolments()
	b.Cleanup(a.WaitEnrolments) // the batches' pointer samples may enrol a mouse model meanwhile
	type sess struct {
		id   string
		keys []*vigilv1.KeyTiming
		pos  int
	}
	var pool []*sess
	serial := 0
	open := func() *sess {
		serial++
		s := &sess{id: fmt.Sprintf("s%d", serial), keys: keys(400)}
		if _, err := a.StartSession(ctx, &vigilv1.StartSessionRequest{Session: s.id, User: "u"}); err != nil {
			b.Fatal(err)
		}
		return s
	}
	for range 32 {
		pool = append(pool, open())
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s := pool[i%len(pool)]
		if s.pos+4 > len(s.keys) {
			b.StopTimer()
			a.EndSession(ctx, &vigilv1.EndSessionRequest{Session: s.id})
			s = open()
			pool[i%len(pool)] = s
			b.StartTimer()
		}
		req := &vigilv1.SendEventsRequest{Session: s.id, Keys: s.keys[s.pos : s.pos+4]}
		s.pos += 4
		for j := range 30 {
			req.Pointer = append(req.Pointer, &vigilv1.PointerSample{AtMs: req.Keys[0].PressMs + float64(j)*8, X: int32(j), Y: 5, Button: "none", Action: "move"})
		}
		t0 := time.Now()
		resp, err := a.SendEvents(ctx, req)
		lat = append(lat, time.Since(t0))
		if err != nil || resp.Rejected > 0 {
			b.Fatal(err, resp.GetRejectedReason())
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e3, "p50-µs")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)])/1e3, "p99-µs")
}
