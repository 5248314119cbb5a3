package guard_test

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/vigilauth/vigil/guard"
)

// An application wires the guard once, feeds it events from its input hooks, and calls
// Authorize before each privileged action.
func Example() {
	policy, err := guard.ParsePolicy(strings.NewReader("docs.read 50\nbilling 85\n"))
	if err != nil {
		panic(err)
	}
	now := time.Date(2025, 2, 24, 9, 0, 0, 0, time.UTC)
	g, err := guard.New(guard.Config{Clock: func() time.Time { return now }}, policy)
	if err != nil {
		panic(err)
	}
	g.OpenSession("s-1", "alice", now)
	g.ObserveContext(guard.ContextEvent{
		Session: "s-1", IP: netip.MustParseAddr("198.51.100.7"), Lat: 41.88, Lon: -87.63,
		DeviceFingerprint: "laptop-7f3a", Network: "office", LocalTime: now,
	})
	// A behavioural model scored a window of typing as quite unlike Alice's.
	g.ObserveBehaviour("s-1", now.Add(time.Minute), 0.8, []guard.Deviation{
		{Feature: "latency from t to h", Z: 3.4}, {Feature: "hold time of space", Z: -2.1},
	})

	for _, resource := range []string{"docs.read", "billing"} {
		d := g.Authorize(context.Background(), "s-1", resource)
		fmt.Println(d.Allow, d.Tier, d.Outcome)
	}
	d := g.Authorize(context.Background(), "s-1", "billing")
	fmt.Println(d.Reasons[0])
	if d.Challenge.Open() {
		// Put the challenge to the user; they pass it.
		st, _ := g.AnswerChallenge("s-1", d.Challenge.ID, true, now.Add(2*time.Minute))
		fmt.Println(st.Tier, st.Trust)
	}
	// Output:
	// true soft_challenge allowed
	// false soft_challenge low_trust
	// behaviour unlike this user's (anomaly 0.80): latency from t to h +3.4σ, hold time of space -2.1σ from baseline (-19)
	// monitor 90
}

// lengthScorer is what a models engineer writes: one scorer per user, fed windows of input,
// returning a calibrated anomaly and the features that deviated. This toy looks only at the mean
// hold time against the user's enrolled mean; package guard/behaviour is the real one, on the
// per-user models of package models.
type lengthScorer struct {
	meanHoldMs, sdHoldMs float64
}

func (s *lengthScorer) ScoreKeystrokes(w []guard.KeystrokeEvent) (guard.BehaviourScore, error) {
	var sum float64
	for _, k := range w {
		sum += float64(k.Release.Sub(k.Press).Milliseconds())
	}
	z := (sum/float64(len(w)) - s.meanHoldMs) / s.sdHoldMs
	anomaly := min(1, max(0, (abs(z)-1)/3)) // toy calibration: |z| 1 -> 0, |z| 4 -> 1
	return guard.BehaviourScore{Anomaly: anomaly, Deviations: []guard.Deviation{{Feature: "mean hold time", Z: z}}}, nil
}

func (s *lengthScorer) ScoreMouse([]guard.MouseEvent) (guard.BehaviourScore, error) {
	return guard.BehaviourScore{}, guard.ErrNotScored // keystrokes only
}

func (s *lengthScorer) Feedback(f guard.Feedback) {
	// A real model would add (Genuine, ChallengePassed) or exclude (Compromised) the windows
	// between f.From and f.To when it next adapts its baseline.
}

func abs(v float64) float64 { return max(v, -v) }

func ExampleBehaviourScorer() {
	scorers := guard.ScorerSourceFunc(func(user string) (guard.BehaviourScorer, error) {
		return &lengthScorer{meanHoldMs: 100, sdHoldMs: 10}, nil // loaded from the user's model
	})
	now := time.Date(2025, 2, 24, 9, 0, 0, 0, time.UTC)
	policy, _ := guard.ParsePolicy(strings.NewReader("docs.read 50\n"))
	g, _ := guard.New(guard.Config{Scorers: scorers, KeystrokeWindow: 10, KeystrokeHop: 10, Clock: func() time.Time { return now.Add(time.Hour) }}, policy)
	g.OpenSession("s-1", "bob", now)
	var st guard.Status
	for i := 0; i < 10; i++ {
		press := now.Add(time.Duration(i) * 200 * time.Millisecond)
		st, _ = g.ObserveKeystroke(guard.KeystrokeEvent{Session: "s-1", Press: press, Release: press.Add(160 * time.Millisecond), Key: 'E'})
	}
	fmt.Println(st.Tier, st.Reasons[0].Text)
	// Output: soft_challenge typing unlike this user's (anomaly 1.00): mean hold time +6.0σ from baseline
}
