package guard

import (
	"context"
	"testing"
	"time"
)

// foreignKeyScorer scores a window foreign (anomaly 1) when most of its keys are key 99.
type foreignKeyScorer struct{}

func (foreignKeyScorer) ScoreKeystrokes(w []KeystrokeEvent) (BehaviourScore, error) {
	n := 0
	for _, k := range w {
		if k.Key == 99 {
			n++
		}
	}
	if 2*n > len(w) {
		return BehaviourScore{Anomaly: 1}, nil
	}
	return BehaviourScore{}, nil
}
func (foreignKeyScorer) ScoreMouse([]MouseEvent) (BehaviourScore, error) {
	return BehaviourScore{}, ErrNotScored
}
func (foreignKeyScorer) Feedback(Feedback) {}

// TestAttackFutureEventBlindsTheGuard is the impostor at the keyboard of a stolen session
// sending, with the page's token, one pointer event dated almost five minutes ahead (within
// MaxClockSkew), then typing. Every real-time event after it used to be refused as out of order,
// unscored: a review typed 1,000 foreign keystrokes and the session stayed at trust 75 with
// Authorize allowing. Now the impostor's typing is scored and the session revoked.
func TestAttackFutureEventBlindsTheGuard(t *testing.T) {
	clk := &testClock{}
	g, err := New(Config{Clock: clk.Now, Scorers: ScorerSourceFunc(func(string) (BehaviourScorer, error) { return foreignKeyScorer{}, nil })},
		mustPolicy(t, testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)
	clk.Set(t0)
	if _, err := g.OpenSession("s", "alice", t0); err != nil {
		t.Fatal(err)
	}
	start := t0.Add(time.Second)
	clk.Set(start)
	if _, err := g.ObserveMouse(MouseEvent{Session: "s", At: start.Add(4*time.Minute + 59*time.Second), X: 1, Y: 1, Button: ButtonNone, Action: ActionMove}); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for i := range 1000 {
		at := start.Add(time.Duration(i) * 150 * time.Millisecond)
		clk.Set(at)
		if _, err := g.ObserveKeystroke(KeystrokeEvent{Session: "s", Press: at, Release: at.Add(80 * time.Millisecond), Key: 99}); err != nil {
			refused++
		}
	}
	st, _ := g.Status("s")
	if d := g.Authorize(context.Background(), "s", "docs.read"); d.Allow || !st.Revoked && st.Tier == TierMonitor {
		t.Fatalf("after 1,000 foreign keystrokes (%d refused): trust %.1f, tier %v, revoked %v, Authorize allows %v", refused, st.Trust, st.Tier, st.Revoked, d.Allow)
	}
	t.Logf("%d of 1,000 refused; trust %.1f, tier %v, revoked %v", refused, st.Trust, st.Tier, st.Revoked)
}
