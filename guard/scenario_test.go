package guard_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
)

// TestScenarioHijackAt3AM: a session opened by a user in Chicago is used hours later from
// Eastern Europe, on another device, typing like another person (another participant's real
// typing, scored by the owner's real model), reaching for billing data. The action is denied,
// the session escalates to termination, and the audit log explains why. Three pairs of test
// participants play owner and thief.
func TestScenarioHijackAt3AM(t *testing.T) {
	f := loadFleet(t)
	for _, pair := range [][2]int{{0, 1}, {2, 3}, {4, 5}} {
		owner, thief := newTypist(t, f, pair[0]), newTypist(t, f, pair[1])
		t.Run(owner.id+"-by-"+thief.id, func(t *testing.T) { hijackAt3AM(t, owner, thief) })
	}
}

func hijackAt3AM(t *testing.T, owner, thief typist) {
	s := newScenario(t)
	s.enrol(t, "alice", owner)
	end := s.history(t, "alice", historyStart)
	g := s.g

	// Monday 16:00 in Chicago: Alice logs in at the office and types; billing is allowed.
	open := mondayAfter(end, 16, chicago)
	s.set(open)
	if _, err := g.OpenSession("s-alice", "alice", open); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ObserveContext(contextAt("s-alice", placeChicago, "laptop-alice", "office-net", open)); err != nil {
		t.Fatal(err)
	}
	var st guard.Status
	for _, ev := range events("s-alice", owner.unseen[:150], open.Add(time.Minute)) {
		s.set(ev.Release)
		var err error
		if st, err = g.ObserveKeystroke(ev); err != nil {
			t.Fatal(err)
		}
	}
	if d := g.Authorize(context.Background(), "s-alice", "billing"); !d.Allow {
		t.Fatalf("Alice (participant %s) at her desk is denied billing: %s", owner.id, d.Explain())
	}
	if c := s.rec.count("s-alice", guard.TransitionChallengeIssued); c != 0 {
		t.Fatalf("Alice was challenged %d times at her desk", c)
	}
	before := st.Trust

	// Four hours later the session is used from Warsaw at 03:00 local time, on another device
	// and network.
	hijack := open.Add(4 * time.Hour)
	s.set(hijack)
	st, err := g.ObserveContext(contextAt("s-alice", placeWarsaw, "desktop-unknown", "isp-pl-residential", hijack))
	if err != nil {
		t.Fatal(err)
	}
	if got := hijack.In(warsaw).Hour(); got != 3 {
		t.Fatalf("scenario clock: %d:00 in Warsaw, want 3:00", got)
	}
	signals := map[guard.Signal]bool{}
	for _, r := range st.Reasons {
		signals[r.Signal] = true
	}
	for _, sig := range []guard.Signal{guard.SignalImpossibleTravel, guard.SignalNewDevice, guard.SignalNewNetwork, guard.SignalUnusualHour} {
		if !signals[sig] {
			t.Errorf("context rule %v did not fire; reasons %v", sig, st.Reasons)
		}
	}
	if st.Tier < guard.TierHard || st.Trust >= before-60 {
		t.Fatalf("after the context change: trust %.0f (was %.0f), tier %v; want a hard challenge", st.Trust, before, st.Tier)
	}
	if d := g.Authorize(context.Background(), "s-alice", "billing"); d.Allow || d.Outcome != guard.OutcomeLowTrust {
		t.Fatalf("billing from Warsaw: %s", d.Explain())
	}

	// The thief types. Nobody answers the hard challenge; the typing finishes the session.
	typed := 0
	for _, ev := range events("s-alice", thief.unseen, hijack.Add(20*time.Second)) {
		s.set(ev.Release)
		_, err := g.ObserveKeystroke(ev)
		if errors.Is(err, guard.ErrRevoked) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		typed++
	}
	st, _ = g.Status("s-alice")
	if !st.Revoked || st.Tier != guard.TierTerminate {
		t.Fatalf("after %d keystrokes of another person the session is %v (trust %.0f), want terminated", typed, st.Tier, st.Trust)
	}
	if elapsed := s.clock().Sub(hijack); elapsed >= s.cfg.Tiers.HardTimeout {
		t.Fatalf("terminated only after %v: by the challenge timeout, not by the typing", elapsed)
	}
	t.Logf("terminated after %d keystrokes of participant %s typing as %s", typed, thief.id, owner.id)
	d := g.Authorize(context.Background(), "s-alice", "billing")
	if d.Allow || d.Outcome != guard.OutcomeRevoked || d.Tier != guard.TierTerminate {
		t.Fatalf("billing after termination: %s", d.Explain())
	}
	t.Log(d.Explain())

	// The audit log verifies and explains: the denial names the context rules and the typing,
	// with the features that gave the thief away in the owner's units.
	var denial *audit.Decision
	var revoked *audit.SessionEvent
	for _, r := range s.records(t) {
		if r.Decision != nil && r.Decision.Resource == "billing" && r.Decision.Outcome == "revoked" {
			denial = r.Decision
		}
		if r.Session != nil && r.Session.Event == "revoked" && r.Session.Session == "s-alice" {
			revoked = r.Session
		}
	}
	if denial == nil || revoked == nil {
		t.Fatalf("audit log lacks the denial (%v) or the revocation (%v)", denial, revoked)
	}
	text := ""
	for _, r := range denial.Reasons {
		text += r.Signal + ": " + r.Text + "\n"
	}
	for _, want := range []string{"impossible travel", "new device", "typing unlike this user's", " ms, usually "} {
		if !strings.Contains(text, want) {
			t.Errorf("the audited denial does not mention %q:\n%s", want, text)
		}
	}
	if denial.Tier != "terminate" || denial.Allow {
		t.Errorf("audited denial: %+v", denial)
	}
}

// TestScenarioTravellerWithNewLaptop: a genuine user flies to Warsaw and works on a new laptop.
// They get at most a soft challenge, recover after passing it, and the baseline learns the
// laptop and network so that the next session raises nothing. Three test participants type.
func TestScenarioTravellerWithNewLaptop(t *testing.T) {
	f := loadFleet(t)
	for n := 0; n < 3; n++ {
		traveller := newTypist(t, f, n)
		t.Run(traveller.id, func(t *testing.T) {
			s := newScenario(t)
			s.enrol(t, "bob", traveller)
			end := s.history(t, "bob", historyStart)
			g := s.g

			// Monday 10:00 in Warsaw, two days after leaving the Chicago office.
			open := mondayAfter(end, 10, warsaw)
			s.set(open)
			if _, err := g.OpenSession("s-trip", "bob", open); err != nil {
				t.Fatal(err)
			}
			st, err := g.ObserveContext(contextAt("s-trip", placeWarsaw, "laptop-new", "hotel-wifi", open))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range st.Reasons {
				if r.Signal == guard.SignalImpossibleTravel || r.Signal == guard.SignalUnusualHour {
					t.Fatalf("a plausible trip at a usual local hour raised %v: %s", r.Signal, r.Text)
				}
			}
			if st.Tier > guard.TierSoft {
				t.Fatalf("new laptop and network: tier %v, trust %.0f", st.Tier, st.Trust)
			}
			if d := g.Authorize(context.Background(), "s-trip", "docs.read"); !d.Allow {
				t.Fatalf("docs denied to the traveller: %s", d.Explain())
			}
			if d := g.Authorize(context.Background(), "s-trip", "billing"); d.Allow {
				t.Fatalf("billing allowed on an unknown laptop without a step-up: %s", d.Explain())
			}

			// The application steps up; the traveller passes. Any challenge the typing raises
			// is passed too, as the genuine user would.
			c, err := g.StepUp("s-trip", guard.TierSoft, open.Add(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if st, err = g.AnswerChallenge("s-trip", c.ID, true, open.Add(20*time.Second)); err != nil {
				t.Fatal(err)
			}
			if st.Tier != guard.TierMonitor || st.Trust < s.cfg.Tiers.SoftPassTrust {
				t.Fatalf("after passing: tier %v, trust %.0f", st.Tier, st.Trust)
			}
			for _, ev := range events("s-trip", traveller.unseen, open.Add(30*time.Second)) {
				s.set(ev.Release)
				st, err := g.ObserveKeystroke(ev)
				if err != nil {
					t.Fatal(err)
				}
				if st.Challenge.Open() {
					if st.Challenge.Tier != guard.TierSoft {
						t.Fatalf("the traveller got a %v challenge: %v", st.Challenge.Tier, st.Reasons)
					}
					if _, err := g.AnswerChallenge("s-trip", st.Challenge.ID, true, ev.Press); err != nil {
						t.Fatal(err)
					}
				}
			}
			st, _ = g.Status("s-trip")
			if st.Tier != guard.TierMonitor {
				t.Fatalf("the traveller ends the session in tier %v (trust %.0f)", st.Tier, st.Trust)
			}
			n := s.rec.count("s-trip", guard.TransitionChallengeIssued)
			if n > 2 {
				t.Errorf("%d challenges: the step-up and at most one more expected", n)
			}
			t.Logf("%d challenges (the step-up included), trust %.0f at the end", n, st.Trust)
			if d := g.Authorize(context.Background(), "s-trip", "billing"); !d.Allow {
				t.Errorf("after a session of genuine typing, billing is still denied: %s", d.Explain())
			}

			// The next session on the same laptop and network raises nothing.
			next := open.Add(24 * time.Hour)
			s.set(next)
			if err := g.CloseSession("s-trip", next); err != nil {
				t.Fatal(err)
			}
			if _, err := g.OpenSession("s-trip-2", "bob", next); err != nil {
				t.Fatal(err)
			}
			st, err = g.ObserveContext(contextAt("s-trip-2", placeWarsaw, "laptop-new", "hotel-wifi", next))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range st.Reasons {
				if r.Impact < 0 {
					t.Errorf("the learnt laptop and network still raise: %s", r.Text)
				}
			}
		})
	}
}

// TestScenarioGenuineLongSession: genuine users typing normally through a session at their desk,
// with a context refresh every minute, scored by their own real models. The typing is the
// unseen rest (about 450 keystrokes each) of 20 test participants who enrolled on 250.
//
// On this data the models do not keep every genuine session free of challenges: over all 500
// participants about one session in seven sees one (vigil eval takeover reports the rate, about
// 0.35 per 1,000 genuine keystrokes). The test holds the guard to that: at most a few of the 20
// sessions challenged, every challenge soft, and every challenged session back to passive
// monitoring once the owner passes it.
func TestScenarioGenuineLongSession(t *testing.T) {
	f := loadFleet(t)
	var challenged []string
	keys, challenges := 0, 0
	for n := 0; n < 20; n++ {
		ty := newTypist(t, f, n)
		s := newScenario(t)
		s.enrol(t, "carol", ty)
		end := s.history(t, "carol", historyStart)
		open := mondayAfter(end, 10, chicago).AddDate(0, 0, 1)
		s.set(open)
		if _, err := s.g.OpenSession("s", "carol", open); err != nil {
			t.Fatal(err)
		}
		nextContext := open
		var st guard.Status
		evs := events("s", ty.unseen, open.Add(time.Second))
		for _, ev := range evs {
			if !ev.Press.Before(nextContext) {
				s.set(ev.Press)
				if _, err := s.g.ObserveContext(contextAt("s", placeChicago, "laptop-carol", "office-net", ev.Press)); err != nil {
					t.Fatal(err)
				}
				nextContext = ev.Press.Add(time.Minute)
			}
			s.set(ev.Release)
			var err error
			if st, err = s.g.ObserveKeystroke(ev); err != nil {
				t.Fatalf("participant %s: %v", ty.id, err)
			}
			if st.Challenge.Open() {
				if st.Challenge.Tier != guard.TierSoft {
					t.Errorf("participant %s: a %v challenge while typing normally: %v", ty.id, st.Challenge.Tier, st.Reasons)
				}
				if st, err = s.g.AnswerChallenge("s", st.Challenge.ID, true, ev.Press); err != nil {
					t.Fatal(err)
				}
			}
		}
		c := s.rec.count("s", guard.TransitionChallengeIssued) + s.rec.count("s", guard.TransitionRevoked)
		keys += len(evs)
		challenges += c
		if c > 0 {
			challenged = append(challenged, ty.id)
		}
		if st.Tier != guard.TierMonitor || st.Trust < s.cfg.Tiers.SoftBelow {
			t.Errorf("participant %s: after %d keystrokes, trust %.0f tier %v", ty.id, len(evs), st.Trust, st.Tier)
		}
	}
	rate := 1000 * float64(challenges) / float64(keys)
	t.Logf("20 genuine sessions, %d keystrokes: %d challenges (%.2f per 1,000 keystrokes); challenged participants %v", keys, challenges, rate, challenged)
	if len(challenged) > 4 || rate >= 1 {
		t.Fatalf("%d of 20 genuine sessions challenged (%v), %.2f per 1,000 keystrokes", len(challenged), challenged, rate)
	}
}
