package behaviour_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models/keystroke"
)

// A user enrolled after their first session is scored from the moment the model is set, by the
// scorer the guard was given when the session opened.
func TestSourceReachesScorersTheGuardHolds(t *testing.T) {
	src := behaviour.NewSource()
	policy, _ := guard.ParsePolicy(strings.NewReader("docs.read 50\n"))
	g, err := guard.New(guard.Config{Scorers: src, Clock: func() time.Time { return t0.Add(time.Hour) }}, policy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.OpenSession("s", "alice", t0); err != nil {
		t.Fatal(err)
	}
	thief := keystroke.NewTypist(2)
	feed := func(ks []keystroke.Keystroke, start time.Time) guard.Status {
		var st guard.Status
		for _, ev := range guardEvents("s", ks, start) {
			st, err = g.ObserveKeystroke(ev)
			if errors.Is(err, guard.ErrRevoked) {
				// The other typist went on until the session ended.
				if st, err = g.Status("s"); err != nil {
					t.Fatal(err)
				}
				return st
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	st := feed(thief.Type(100), t0.Add(time.Second))
	if st.Tier != guard.TierMonitor || src.Scorer("alice").Stats().Unenrolled == 0 {
		t.Fatalf("before enrolment: %v, %+v", st.Tier, src.Scorer("alice").Stats())
	}
	m, _ := enrolled(t, 1)
	if err := src.SetModel("alice", m); err != nil {
		t.Fatal(err)
	}
	if st := feed(thief.Type(100), t0.Add(2*time.Minute)); st.Tier < guard.TierSoft {
		t.Fatalf("after enrolment another typist is not challenged: %v %v", st.Tier, st.Reasons)
	}
	if err := src.SetModel("", m); err == nil {
		t.Error("a model for the empty user accepted")
	}
	sc, err := src.ScorerFor("bob")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.ScoreKeystrokes(guardEvents("s", thief.Type(50), t0)); !errors.Is(err, guard.ErrNotScored) {
		t.Fatalf("an unenrolled user's scorer: %v", err)
	}
}
