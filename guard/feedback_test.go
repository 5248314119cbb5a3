package guard

import (
	"testing"
	"time"
)

func hasSignal(st Status, s Signal) bool {
	for _, r := range st.Reasons {
		if r.Signal == s && r.Impact < 0 {
			return true
		}
	}
	return false
}

// newUserWithLaptop opens a first session for a user on their laptop (learned on first use)
// and returns the rig and the time after it.
func newUserWithLaptop(t *testing.T, sc BehaviourScorer) (*rig, time.Time) {
	r := newRig(t, Config{})
	r.scorers["alice"] = sc
	r.clock.Set(tEvent)
	must(t)(r.g.OpenSession("s0", "alice", tEvent))
	st := must(t)(r.g.ObserveContext(contextAt("s0", placeChicago, "laptop", "office", tEvent)))
	if len(st.Reasons) != 1 || st.Reasons[0].Impact != 0 {
		t.Fatalf("the first context of a new user raised something: %v", st.Reasons)
	}
	return r, tEvent.Add(time.Minute)
}

func TestFeedbackGenuineLearnsTheNewContext(t *testing.T) {
	sc := &scriptedScorer{}
	r, at := newUserWithLaptop(t, sc)
	g := r.g
	r.clock.Set(at.Add(time.Hour))
	must(t)(g.OpenSession("s1", "alice", at))
	st := must(t)(g.ObserveContext(contextAt("s1", placeChicago, "tablet", "cafe", at)))
	if !hasSignal(st, SignalNewDevice) || !hasSignal(st, SignalNewNetwork) {
		t.Fatalf("a new device and network raised nothing: %v", st.Reasons)
	}
	st = must(t)(g.Feedback("s1", VerdictGenuine, at.Add(time.Minute)))
	if st.Trust != g.cfg.Tiers.HardPassTrust || st.Tier != TierMonitor {
		t.Fatalf("after 'genuine': %+v", st)
	}
	if len(sc.feedback) != 1 || sc.feedback[0].Verdict != VerdictGenuine || sc.feedback[0].Session != "s1" || !sc.feedback[0].From.Equal(at) {
		t.Fatalf("scorer feedback %+v", sc.feedback)
	}
	must(t)(g.OpenSession("s2", "alice", at.Add(2*time.Minute)))
	st = must(t)(g.ObserveContext(contextAt("s2", placeChicago, "tablet", "cafe", at.Add(2*time.Minute))))
	if hasSignal(st, SignalNewDevice) || hasSignal(st, SignalNewNetwork) {
		t.Fatalf("the confirmed tablet still raises: %v", st.Reasons)
	}
}

func TestFeedbackCompromisedForgetsWhatTheSessionTaught(t *testing.T) {
	sc := &scriptedScorer{}
	r, at := newUserWithLaptop(t, sc)
	g := r.g
	r.clock.Set(at.Add(time.Hour))
	// A thief's session on another device passes a soft challenge (say, a phished code) and
	// so teaches the baseline its device; the analyst later finds it out.
	must(t)(g.OpenSession("s1", "alice", at))
	c := must(t)(g.ObserveContext(contextAt("s1", placeChicago, "thief-pc", "thief-net", at))).Challenge
	if !c.Open() || c.Tier != TierSoft {
		t.Fatalf("a new user on an unknown device and network: challenge %+v", c)
	}
	must(t)(g.AnswerChallenge("s1", c.ID, true, at.Add(10*time.Second)))
	must(t)(g.OpenSession("s2", "alice", at.Add(time.Minute)))
	if st := must(t)(g.ObserveContext(contextAt("s2", placeChicago, "thief-pc", "thief-net", at.Add(time.Minute)))); hasSignal(st, SignalNewDevice) {
		t.Fatalf("a passed challenge did not teach the device: %v", st.Reasons)
	}
	st := must(t)(g.Feedback("s1", VerdictCompromised, at.Add(2*time.Minute)))
	if !st.Revoked {
		t.Fatal("'compromised' did not revoke")
	}
	if v := sc.feedback[len(sc.feedback)-1].Verdict; v != VerdictCompromised {
		t.Fatalf("scorer told %v", v)
	}
	must(t)(g.OpenSession("s3", "alice", at.Add(3*time.Minute)))
	if st := must(t)(g.ObserveContext(contextAt("s3", placeChicago, "thief-pc", "thief-net", at.Add(3*time.Minute)))); !hasSignal(st, SignalNewDevice) || !hasSignal(st, SignalNewNetwork) {
		t.Fatalf("after 'compromised' the thief's device is still trusted: %v", st.Reasons)
	}
	must(t)(g.OpenSession("s4", "alice", at.Add(4*time.Minute)))
	if st := must(t)(g.ObserveContext(contextAt("s4", placeChicago, "laptop", "office", at.Add(4*time.Minute)))); hasSignal(st, SignalNewDevice) {
		t.Fatalf("the owner's own laptop was forgotten: %v", st.Reasons)
	}
}

func TestConsistentSessionsTeachTheBaselineAndMature(t *testing.T) {
	r, at := newUserWithLaptop(t, &scriptedScorer{})
	g := r.g
	r.clock.Set(at.Add(24 * time.Hour))
	must(t)(g.OpenSession("s1", "alice", at))
	must(t)(g.ObserveContext(contextAt("s1", placeChicago, "laptop", "home-wifi", at)))
	// LearnAfterWindows consistent windows commit the new network without any feedback.
	for i := 1; i <= g.cfg.Context.LearnAfterWindows; i++ {
		must(t)(g.ObserveBehaviour("s1", at.Add(time.Duration(i)*time.Minute), 0.05, nil))
	}
	must(t)(g.OpenSession("s2", "alice", at.Add(time.Hour)))
	st := must(t)(g.ObserveContext(contextAt("s2", placeChicago, "laptop", "home-wifi", at.Add(time.Hour))))
	if hasSignal(st, SignalNewNetwork) {
		t.Fatalf("home wifi not learned after %d consistent windows: %v", g.cfg.Context.LearnAfterWindows, st.Reasons)
	}
	if st.Trust <= g.cfg.Trust.InitialTrust {
		t.Fatalf("a user with %d consistent windows starts at %.2f", g.cfg.Context.LearnAfterWindows, st.Trust)
	}
	// A new user starts moderate; after MaturityWindows consistent windows, established.
	at = at.Add(2 * time.Hour)
	for i := 0; i < g.cfg.Trust.MaturityWindows; i++ {
		at = at.Add(time.Minute)
		must(t)(g.ObserveBehaviour("s2", at, 0.05, nil))
	}
	if st := must(t)(g.OpenSession("s3", "alice", at)); st.Trust != g.cfg.Trust.EstablishedTrust {
		t.Fatalf("an established user starts at %.2f, want %.2f", st.Trust, g.cfg.Trust.EstablishedTrust)
	}
}
