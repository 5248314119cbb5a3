package round

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/dp"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// seeded is a deterministic byte source standing in for crypto/rand in tests.
type seeded struct{ r *rand.ChaCha8 }

func newSeeded(seed byte) *seeded {
	var s [32]byte
	s[0] = seed
	return &seeded{rand.NewChaCha8(s)}
}

func (s *seeded) Read(p []byte) (int, error) { return s.r.Read(p) }

func plain(vals ...float64) *vigilv1.Update {
	return &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: uint64(len(vals)), Values: vals}
}

var t0 = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

// TestRoundTrace replays one round step by step: every step's result is checked, and rejected
// steps must leave the sum as it was.
func TestRoundTrace(t *testing.T) {
	e, err := New(Config{ExpectedParticipants: 3, Quorum: aggregation.Quorum{Min: 2}, Timeout: time.Minute}, 6)
	if err != nil {
		t.Fatal(err)
	}
	sum := aggregation.NewPlainAccumulator(2)
	id, selected, err := e.Start(t0, 4, []string{"c", "a", "b"}, sum, newSeeded(1))
	if err != nil {
		t.Fatal(err)
	}
	if id != 7 || strings.Join(selected, ",") != "a,b,c" {
		t.Fatalf("Start = round %d selecting %v, want round 7 selecting a,b,c", id, selected)
	}
	task := func(d string) Task {
		tk, ok := e.Task(d)
		if !ok {
			t.Fatalf("no task for %s", d)
		}
		return tk
	}
	ta, tb := task("a"), task("b")
	if ta.BaseVersion != 4 || len(ta.Nonce) != NonceSize || bytes.Equal(ta.Nonce, tb.Nonce) || !ta.Deadline.Equal(t0.Add(time.Minute)) {
		t.Fatalf("bad task %+v", ta)
	}
	sub := func(tk Task) Submission {
		return Submission{Device: tk.Device, Round: tk.Round, Nonce: tk.Nonce, BaseVersion: tk.BaseVersion, Update: plain(1, 2)}
	}
	steps := []struct {
		name  string
		at    time.Duration
		s     Submission
		want  error
		count int
	}{
		{"a submits", time.Second, sub(ta), nil, 1},
		{"a again", 2 * time.Second, sub(ta), ErrDuplicate, 0},
		{"unknown device", 2 * time.Second, Submission{Device: "z", Round: 7, Nonce: ta.Nonce, BaseVersion: 4, Update: plain(1, 2)}, ErrNotSelected, 0},
		{"old round", 2 * time.Second, func() Submission { s := sub(tb); s.Round = 6; return s }(), ErrUnknownRound, 0},
		{"future round", 2 * time.Second, func() Submission { s := sub(tb); s.Round = 8; return s }(), ErrUnknownRound, 0},
		{"b with a's nonce", 2 * time.Second, func() Submission { s := sub(tb); s.Nonce = ta.Nonce; return s }(), ErrBadNonce, 0},
		{"b on a stale model", 2 * time.Second, func() Submission { s := sub(tb); s.BaseVersion = 3; return s }(), ErrStaleBase, 0},
		{"b with the wrong length", 2 * time.Second, func() Submission { s := sub(tb); s.Update = plain(1, 2, 3); return s }(), aggregation.ErrBadUpdate, 0},
		{"b submits", 3 * time.Second, sub(tb), nil, 2},
		{"c after the deadline", 2 * time.Minute, sub(task("c")), ErrDeadline, 0},
		// a, not having heard its answer, learns that its update is in, not that it is late.
		{"a again after the deadline", 2 * time.Minute, sub(ta), ErrDuplicate, 0},
	}
	for _, st := range steps {
		n, err := e.Submit(t0.Add(st.at), st.s)
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: err = %v, want %v", st.name, err, st.want)
		}
		if err == nil && n != st.count {
			t.Fatalf("%s: count %d, want %d", st.name, n, st.count)
		}
	}
	if got := sum.Sum.Values(); got[0] != 2 || got[1] != 4 || sum.Count() != 2 {
		t.Fatalf("sum %v (count %d) after the trace, want [2 4] from 2 updates", got, sum.Count())
	}
	if _, ok := e.Task("a"); ok {
		t.Fatal("a still has a task after submitting")
	}
	if out, _ := e.Decide(t0.Add(30 * time.Second)); out != aggregation.Wait {
		t.Fatalf("before the deadline with c missing: %v, want wait", out)
	}
	if out, _ := e.Decide(t0.Add(time.Minute)); out != aggregation.Close {
		t.Fatalf("at the deadline with 2 of 3: %v, want close", out)
	}
	closed, err := e.Close()
	if err != nil {
		t.Fatal(err)
	}
	if closed.Round != 7 || strings.Join(closed.Participants, ",") != "a,b" || closed.Selected != 3 {
		t.Fatalf("closed %+v", closed)
	}
	if _, err := e.Submit(t0.Add(30*time.Second), sub(task2(e, "c"))); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after close: %v, want ErrClosed", err)
	}
	if _, err := e.Submit(t0.Add(30*time.Second), sub(tb)); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("b again after close: %v, want ErrDuplicate (its update is in)", err)
	}
	if _, _, err := e.Start(t0, 5, []string{"a"}, aggregation.NewPlainAccumulator(2), newSeeded(2)); !errors.Is(err, ErrRoundOpen) {
		t.Fatalf("start while open: %v", err)
	}
	e.Finish()
	if _, err := e.Submit(t0, sub(ta)); !errors.Is(err, ErrUnknownRound) {
		t.Fatalf("submit with no round: %v", err)
	}
}

// task2 builds c's submission by hand: after Close the engine no longer hands out tasks.
func task2(e *Engine, d string) Task { return Task{Device: d, Round: e.Current(), BaseVersion: 4} }

func TestPoissonSampling(t *testing.T) {
	e, _ := New(Config{ExpectedParticipants: 100, Quorum: aggregation.Quorum{Min: 1}, Timeout: time.Minute}, 0)
	devices := make([]string, 1000)
	for i := range devices {
		devices[i] = string(rune('a'+i%26)) + strings.Repeat("x", i/26)
	}
	total := 0
	const rounds = 50
	for r := 0; r < rounds; r++ {
		_, sel, err := e.Start(t0, 1, devices, aggregation.NewPlainAccumulator(1), newSeeded(byte(r)))
		if err != nil {
			t.Fatal(err)
		}
		total += len(sel)
		e.Finish()
	}
	// Binomial(1000, 0.1) per round: mean 100, sd about 9.5; over 50 rounds the mean has sd 1.3.
	if mean := float64(total) / rounds; mean < 94 || mean > 106 {
		t.Fatalf("mean sample size %.1f, want about 100", mean)
	}
}

func TestTooFewDevices(t *testing.T) {
	e, _ := New(Config{ExpectedParticipants: 3, Quorum: aggregation.Quorum{Min: 3}, Timeout: time.Minute}, 0)
	id, _, err := e.Start(t0, 1, []string{"a", "b"}, aggregation.NewPlainAccumulator(1), newSeeded(1))
	if !errors.Is(err, ErrTooFewDevices) || id != 1 {
		t.Fatalf("Start with 2 devices for a minimum of 3: round %d, %v", id, err)
	}
	if e.Current() != 0 {
		t.Fatal("a round is open after a failed start")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{ExpectedParticipants: 0, Quorum: aggregation.Quorum{Min: 1}, Timeout: time.Second},
		{ExpectedParticipants: 2, Quorum: aggregation.Quorum{Min: 3}, Timeout: time.Second},
		{ExpectedParticipants: 2, Quorum: aggregation.Quorum{Min: 1}, Timeout: 0},
	} {
		if _, err := New(c, 0); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

// TestKeptDrawsIncludeADeviceAtInclusionRate draws rounds as the engine does, throwing away
// those with too few devices, and checks that among the kept ones a device is in the sample
// as often as dp.InclusionRate says (which the ledger charges), not q = K/N.
func TestKeptDrawsIncludeADeviceAtInclusionRate(t *testing.T) {
	const n, k, m, draws = 1000, 10, 10, 3000
	devices := make([]string, n)
	for i := range devices {
		devices[i] = fmt.Sprintf("d%04d", i)
	}
	rnd := newSeeded(7)
	var kept, included int
	for range draws {
		e, err := New(Config{ExpectedParticipants: k, Quorum: aggregation.Quorum{Min: m}, Timeout: time.Minute}, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, selected, err := e.Start(t0, 0, devices, aggregation.NewPlainAccumulator(1), rnd)
		if errors.Is(err, ErrTooFewDevices) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		kept++
		included += len(selected) // every device alike: the mean share of devices in a kept draw
	}
	rate := float64(included) / float64(kept*n)
	want, err := dp.InclusionRate(k, n, m)
	if err != nil {
		t.Fatal(err)
	}
	// The kept draws' sizes have a standard deviation of about 2.5, so the mean over some 1,600
	// of them is known to about 0.06 devices, 0.6% of the rate; 3% is five of those.
	if math.Abs(rate/want-1) > 0.03 {
		t.Errorf("a device was in %.5f of %d kept draws; dp.InclusionRate = %.5f (q = %.5f)", rate, kept, want, float64(k)/n)
	}
	t.Logf("kept %d of %d draws; inclusion %.5f = %.3f q; dp.InclusionRate %.5f", kept, draws, rate, rate*n/k, want)
}
