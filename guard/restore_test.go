package guard

import (
	"context"
	"errors"
	"math"
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
