package guard

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// savedWithChallenge opens a session, puts a hard challenge to it and saves it.
func savedWithChallenge(t *testing.T) (SavedSession, Challenge, Decision) {
	r := newRig(t, Config{})
	r.clock.Set(tEvent.Add(time.Minute))
	must(t)(r.g.OpenSession("s", "alice", tEvent))
	c, err := r.g.StepUp("s", TierHard, tEvent.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	sv, err := r.g.SaveSession("s")
	if err != nil {
		t.Fatal(err)
	}
	if sv.Challenge != c || sv.Tier != TierHard || sv.LastChallenge != c.ID || sv.Revoked || !sv.Opened.Equal(tEvent) {
		t.Fatalf("saved %+v, challenge %+v", sv, c)
	}
	return sv, c, r.g.Authorize(context.Background(), "s", "docs.read")
}

func TestRestoreSessionKeepsStandingAndChallenge(t *testing.T) {
	sv, c, before := savedWithChallenge(t)
	r := newRig(t, Config{})
	at := tEvent.Add(2 * time.Minute) // within the challenge's deadline
	r.clock.Set(at)
	st := must(t)(r.g.RestoreSession(sv, at))
	if st.Trust != roundTrust(sv.Trust) || st.Tier != TierHard || st.Challenge != c {
		t.Fatalf("restored %+v from %+v", st, sv)
	}
	if d := r.g.Authorize(context.Background(), "s", "docs.read"); d.Allow != before.Allow || d.Outcome != before.Outcome || d.Tier != before.Tier {
		t.Fatalf("Authorize answers %+v after the restore, %+v before", d, before)
	}
	if n := len(r.rec.transitions); n != 1 || r.rec.transitions[0].Kind != TransitionRestored || r.rec.transitions[0].To != TierHard {
		t.Fatalf("transitions %+v", r.rec.transitions)
	}
	// The application answers the challenge it was given before the restart.
	if st = must(t)(r.g.AnswerChallenge("s", c.ID, true, at)); st.Tier != TierMonitor {
		t.Fatalf("after passing the restored challenge: %+v", st)
	}
	if c2, err := r.g.StepUp("s", TierSoft, at); err != nil || c2.ID <= c.ID {
		t.Fatalf("a new challenge after the restored one: %+v %v", c2, err)
	}
	if _, err := r.g.RestoreSession(sv, at); !errors.Is(err, ErrSessionExists) {
		t.Fatalf("restoring an open session again: %v", err)
	}
}

// The downtime counts: a challenge whose deadline passed while the process was down is
// unanswered, as if the guard had kept running (a hard one terminates).
func TestRestoreSessionAfterTheDeadline(t *testing.T) {
	sv, c, _ := savedWithChallenge(t)
	r := newRig(t, Config{})
	at := c.Deadline.Add(time.Second)
	r.clock.Set(at)
	st := must(t)(r.g.RestoreSession(sv, at))
	if !st.Revoked || st.Tier != TierTerminate || st.Trust != 0 {
		t.Fatalf("a hard challenge left unanswered over the downtime: %+v", st)
	}
	if _, err := r.g.AnswerChallenge("s", c.ID, true, at); !errors.Is(err, ErrRevoked) {
		t.Fatalf("answering after the restore: %v", err)
	}
}

// A restore never raises a session's standing: trust is what was saved, the tier at least the
// saved one, and a revoked or terminated session stays so; a trust out of range is refused.
func TestRestoreSessionNeverRaisesStanding(t *testing.T) {
	at := tEvent.Add(time.Hour)
	base := SavedSession{ID: "s", User: "alice", Opened: tEvent, Last: tEvent, Trust: 90, Tier: TierMonitor}
	for _, tc := range []struct {
		name  string
		edit  func(*SavedSession)
		trust float64
		tier  Tier
	}{
		{"kept", func(*SavedSession) {}, 90, TierMonitor},
		{"hard tier without its challenge", func(s *SavedSession) { s.Tier = TierHard }, 90, TierHard},
		{"trust in the soft band", func(s *SavedSession) { s.Trust = 50 }, 50, TierSoft},
		{"trust below termination", func(s *SavedSession) { s.Trust = 5 }, 0, TierTerminate},
		{"terminated", func(s *SavedSession) { s.Tier = TierTerminate }, 0, TierTerminate},
		{"revoked", func(s *SavedSession) { s.Revoked = true }, 0, TierTerminate},
	} {
		r := newRig(t, Config{})
		r.clock.Set(at)
		sv := base
		tc.edit(&sv)
		st, err := r.g.RestoreSession(sv, at)
		if err != nil || st.Trust != tc.trust || st.Tier != tc.tier || (tc.tier == TierTerminate) != st.Revoked {
			t.Errorf("%s: %+v %v", tc.name, st, err)
		}
		if st.Tier == TierSoft || st.Tier == TierHard {
			if !st.Challenge.Open() {
				t.Errorf("%s: tier %v without a challenge", tc.name, st.Tier)
			}
		}
	}
	for _, trust := range []float64{-1, MaxTrust + 1, math.NaN()} {
		r := newRig(t, Config{})
		r.clock.Set(at)
		sv := base
		sv.Trust = trust
		if _, err := r.g.RestoreSession(sv, at); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("trust %v: %v", trust, err)
		}
	}
}

// A restored session is not charged again for the context it has paid for: the same new device
// and network, seen again after the restart, cost nothing, and the session still teaches its
// user's baseline what it had yet to teach. Without its saved context (as before the fix) the
// restored session pays twice and teaches nothing.
func TestRestoreSessionKeepsContext(t *testing.T) {
	r := newRig(t, Config{})
	end := r.history(t, "alice", tEvent)
	at := end.AddDate(0, 0, 1)
	at = time.Date(at.Year(), at.Month(), at.Day(), 10, 0, 0, 0, chicago)
	r.clock.Set(at)
	opened := must(t)(r.g.OpenSession("s", "alice", at))
	if st := must(t)(r.g.ObserveContext(contextAt("s", placeChicago, "new-phone", "cafe-net", at))); st.Trust >= opened.Trust {
		t.Fatalf("the new device and network were not charged: %+v", st)
	}
	sv, err := r.g.SaveSession("s")
	if err != nil {
		t.Fatal(err)
	}
	if got := sv.Context.Flagged; len(got) != 2 || got[0] != "d:new-phone" || got[1] != "n:cafe-net" {
		t.Fatalf("flagged %q", got)
	}
	if l := sv.Context.Last; l == nil || l.Lat != placeChicago.lat || l.Lon != placeChicago.lon {
		t.Fatalf("last location %+v", l)
	}
	baseline, _ := r.g.Baseline("alice")

	restore := func(keep bool) (*rig, float64) {
		r2 := newRig(t, Config{})
		if err := r2.g.RestoreBaseline(baseline); err != nil {
			t.Fatal(err)
		}
		r2.clock.Set(at.Add(time.Minute))
		restored := sv
		if !keep {
			restored.Context = SavedContext{}
		}
		return r2, must(t)(r2.g.RestoreSession(restored, at.Add(time.Minute))).Trust
	}
	for _, keep := range []bool{true, false} {
		r2, before := restore(keep)
		after := must(t)(r2.g.ObserveContext(contextAt("s", placeChicago, "new-phone", "cafe-net", at.Add(time.Minute)))).Trust
		if charged := after < before; charged == keep {
			t.Errorf("context kept %v: trust %.2f after the restore, %.2f after the same context again", keep, before, after)
		}
		r2, _ = restore(keep)
		must(t)(r2.g.Feedback("s", VerdictGenuine, at.Add(time.Minute)))
		b, _ := r2.g.Baseline("alice")
		if _, taught := b.Devices["new-phone"]; taught != keep {
			t.Errorf("context kept %v: the analyst's genuine verdict taught the new device: %v", keep, taught)
		}
	}
}

func TestRestoreSessionRefusesBadContext(t *testing.T) {
	base := SavedSession{ID: "s", User: "alice", Opened: tEvent, Last: tEvent, Trust: 90, Tier: TierMonitor}
	for _, tc := range []struct {
		name string
		cx   SavedContext
	}{
		{"flag of no kind", SavedContext{Flagged: []string{"x:phone"}}},
		{"too many flags", SavedContext{Flagged: slices.Repeat([]string{"d:phone"}, maxSavedFlags+1)}},
		{"slot out of the week", SavedContext{UnusualHours: []int{hoursPerWeek}}},
		{"negative slot", SavedContext{Counted: []int{-1}}},
		{"learned slot out of the week", SavedContext{Learned: SavedLearning{Hours: []int{200}}}},
		{"negative maturity", SavedContext{Pending: SavedLearning{Maturity: -1}}},
		{"location off the globe", SavedContext{Last: &BaselineLocation{Lat: 91}}},
		{"NaN location", SavedContext{Last: &BaselineLocation{Lat: math.NaN()}}},
		{"previous home without the home set", SavedContext{PrevHome: &BaselineLocation{}}},
	} {
		r := newRig(t, Config{})
		r.clock.Set(tEvent.Add(time.Minute))
		sv := base
		sv.Context = tc.cx
		if _, err := r.g.RestoreSession(sv, tEvent.Add(time.Minute)); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
