package behaviour_test

import (
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models/keystroke"
)

// A passed challenge teaches the model the session's windows, once each and without counting a
// keystroke twice, so that the owner's changed typing stops looking foreign; a compromised
// session is never learnt from.
func TestFeedbackTeachesDisjointWindowsOnce(t *testing.T) {
	m, _ := enrolled(t, 1)
	sc, _ := behaviour.NewScorer(m)
	// The owner's typing has drifted: it now looks like typist 4's.
	drifted := keystroke.NewTypist(4)
	probe := windowsOf(guardEvents("probe", drifted.Type(500), t0.Add(time.Hour)))
	before := meanAnomaly(t, sc, probe)

	evs := guardEvents("s1", drifted.Type(400), t0) // 15 windows at hop 25, 8 of them disjoint
	for _, w := range windowsOf(evs) {
		sc.ScoreKeystrokes(w)
	}
	other := guardEvents("s2", drifted.Type(200), t0.Add(10*time.Minute))
	for _, w := range windowsOf(other) {
		sc.ScoreKeystrokes(w)
	}
	sc.Feedback(guard.Feedback{User: "alice", Session: "s1", Verdict: guard.VerdictChallengePassed, From: t0, To: evs[len(evs)-1].Press})
	if st := sc.Stats(); st.Learnt != 8 || st.Feedbacks != 1 {
		t.Fatalf("after a passed challenge covering 15 overlapping windows: %+v, want 8 learnt", st)
	}
	sc.Feedback(guard.Feedback{User: "alice", Session: "s1", Verdict: guard.VerdictGenuine, From: t0, To: evs[len(evs)-1].Press})
	if st := sc.Stats(); st.Learnt != 8 {
		t.Fatalf("the same windows were learnt twice: %+v", st)
	}
	after := meanAnomaly(t, sc, probe)
	t.Logf("mean anomaly of the drifted typing: %.3f before, %.3f after learning 8 windows", before, after)
	if !(after < before-0.1) {
		t.Fatalf("learning the owner's new typing did not lower its anomaly: %.3f -> %.3f", before, after)
	}

	// A compromised verdict: session s2's windows are never learnt, even if a later verdict
	// says otherwise.
	sc.Feedback(guard.Feedback{User: "alice", Session: "s2", Verdict: guard.VerdictCompromised, From: t0, To: t0.Add(time.Hour)})
	sc.Feedback(guard.Feedback{User: "alice", Session: "s2", Verdict: guard.VerdictGenuine, From: t0, To: t0.Add(time.Hour)})
	if st := sc.Stats(); st.Learnt != 8 {
		t.Fatalf("a compromised session's windows were learnt: %+v", st)
	}
}

// Windows outside the verdict's span are not learnt: a verdict covers the stretch of session
// it was given for.
func TestFeedbackKeepsToItsSpan(t *testing.T) {
	m, owner := enrolled(t, 1)
	sc, _ := behaviour.NewScorer(m)
	evs := guardEvents("s", owner.Type(300), t0)
	for _, w := range windowsOf(evs) {
		sc.ScoreKeystrokes(w)
	}
	sc.Feedback(guard.Feedback{Session: "s", Verdict: guard.VerdictChallengePassed, From: t0, To: evs[99].Press})
	// Windows over keystrokes 0-49, 25-74 and 50-99 lie within; two are disjoint.
	if st := sc.Stats(); st.Learnt != 2 {
		t.Fatalf("%+v, want 2 windows learnt", st)
	}
	sc.Feedback(guard.Feedback{Session: "other", Verdict: guard.VerdictGenuine, From: t0, To: t0.Add(time.Hour)})
	if st := sc.Stats(); st.Learnt != 2 {
		t.Fatalf("another session's verdict taught this one's windows: %+v", st)
	}
	unenrolled, _ := behaviour.NewScorer(nil)
	unenrolled.Feedback(guard.Feedback{Session: "s", Verdict: guard.VerdictGenuine, From: t0, To: t0.Add(time.Hour)})
	if st := unenrolled.Stats(); st.Learnt != 0 {
		t.Fatalf("%+v", st)
	}
}
