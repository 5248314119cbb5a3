package guard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/audit"
)

// teeRecorder hands everything to two recorders.
type teeRecorder struct{ a, b Recorder }

func (t teeRecorder) RecordDecision(d Decision)     { t.a.RecordDecision(d); t.b.RecordDecision(d) }
func (t teeRecorder) RecordTransition(x Transition) { t.a.RecordTransition(x); t.b.RecordTransition(x) }

// auditRig is a rig whose decisions also go to a real, signed audit log in memory.
type auditRig struct {
	*rig
	queue  *AuditQueue
	log    *audit.Log
	file   *bytes.Buffer
	signer *audit.MLDSA65Signer
}

func newAuditRig(tb testing.TB, cfg Config) *auditRig {
	tb.Helper()
	seed := sha256.Sum256([]byte("vigil guard scenario audit key"))
	signer, err := audit.NewMLDSA65Signer(seed[:])
	if err != nil {
		tb.Fatal(err)
	}
	ar := &auditRig{queue: NewAuditQueue(1 << 16), file: &bytes.Buffer{}, signer: signer}
	mem := &memRecorder{}
	cfg.Recorder = teeRecorder{mem, ar.queue}
	r := &rig{clock: &testClock{}, rec: mem, scorers: map[string]BehaviourScorer{}}
	cfg.Clock = r.clock.Now
	cfg.Scorers = ScorerSourceFunc(func(user string) (BehaviourScorer, error) { return r.scorers[user], nil })
	if r.g, err = New(cfg, mustPolicy(tb, testPolicy)); err != nil {
		tb.Fatal(err)
	}
	ar.rig = r
	if ar.log, err = audit.New(ar.file, audit.Head{}, audit.Config{Signer: signer, CheckpointEvery: 64}); err != nil {
		tb.Fatal(err)
	}
	return ar
}

// records drains the queue, signs the tail, verifies the log and returns its records.
func (ar *auditRig) records(tb testing.TB) []audit.Record {
	tb.Helper()
	now := ar.clock.Now()
	if err := ar.queue.Drain(ar.log, now); err != nil {
		tb.Fatal(err)
	}
	if err := ar.log.Checkpoint(now); err != nil {
		tb.Fatal(err)
	}
	rep, err := audit.Verify(bytes.NewReader(ar.file.Bytes()), ar.signer.Public())
	if err != nil {
		tb.Fatalf("the audit log does not verify: %v", err)
	}
	if rep.Dropped != 0 {
		tb.Fatalf("the audit queue dropped %d entries", rep.Dropped)
	}
	var out []audit.Record
	for _, line := range bytes.SplitAfter(ar.file.Bytes(), []byte("\n")) {
		if len(line) > 0 {
			r, err := audit.DecodeRecord(line)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, r)
		}
	}
	return out
}

// mondayAfter returns the first Monday after t, at hour:00 in loc.
func mondayAfter(t time.Time, hour int, loc *time.Location) time.Time {
	d := time.Date(t.Year(), t.Month(), t.Day(), hour, 0, 0, 0, loc).AddDate(0, 0, 1)
	for d.Weekday() != time.Monday {
		d = d.AddDate(0, 0, 1)
	}
	return d
}

var historyStart = time.Date(2025, 1, 5, 0, 0, 0, 0, chicago)

// TestScenarioHijackAt3AM: a session opened by a user in Chicago is used hours later from
// Eastern Europe, on another device, typing like another person (real typing of another
// participant), reaching for billing data. The action is denied, the session escalates to
// termination, and the audit log explains why.
func TestScenarioHijackAt3AM(t *testing.T) {
	pop := loadPopulation(t)
	owner := newTypist(t, pop, pop.test[0])
	thief := newTypist(t, pop, pop.test[1])
	ar := newAuditRig(t, Config{})
	ar.scorers["alice"] = owner.scorer
	end := ar.history(t, "alice", historyStart)
	g := ar.g

	// Monday 16:00 in Chicago: Alice logs in at the office and types; billing is allowed.
	open := mondayAfter(end, 16, chicago)
	ar.clock.Set(open)
	if _, err := g.OpenSession("s-alice", "alice", open); err != nil {
		t.Fatal(err)
	}
	if _, err := g.ObserveContext(contextAt("s-alice", placeChicago, "laptop-alice", "office-net", open)); err != nil {
		t.Fatal(err)
	}
	sts, err := ar.replay(events("s-alice", owner.unseen[:150], open.Add(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Authorize(context.Background(), "s-alice", "billing"); !d.Allow {
		t.Fatalf("Alice at her desk is denied billing: %s", d.Explain())
	}
	if c := ar.rec.count("s-alice", TransitionChallengeIssued); c != 0 {
		t.Fatalf("Alice was challenged %d times at her desk", c)
	}
	before := sts[len(sts)-1].Trust

	// Four hours later the session is used from Warsaw at 03:00 local time, on another device
	// and network.
	hijack := open.Add(4 * time.Hour)
	ar.clock.Set(hijack)
	st, err := g.ObserveContext(contextAt("s-alice", placeWarsaw, "desktop-unknown", "isp-pl-residential", hijack))
	if err != nil {
		t.Fatal(err)
	}
	if got := hijack.In(warsaw).Hour(); got != 3 {
		t.Fatalf("scenario clock: %d:00 in Warsaw, want 3:00", got)
	}
	signals := map[Signal]bool{}
	for _, r := range st.Reasons {
		signals[r.Signal] = true
	}
	for _, s := range []Signal{SignalImpossibleTravel, SignalNewDevice, SignalNewNetwork, SignalUnusualHour} {
		if !signals[s] {
			t.Errorf("context rule %v did not fire; reasons %v", s, st.Reasons)
		}
	}
	if st.Tier < TierHard || st.Trust >= before-60 {
		t.Fatalf("after the context change: trust %.0f (was %.0f), tier %v; want a hard challenge", st.Trust, before, st.Tier)
	}
	d := g.Authorize(context.Background(), "s-alice", "billing")
	if d.Allow || d.Outcome != OutcomeLowTrust {
		t.Fatalf("billing from Warsaw: %s", d.Explain())
	}

	// The thief types. Nobody answers the hard challenge; the typing finishes the session.
	thiefEvents := events("s-alice", thief.unseen, hijack.Add(20*time.Second))
	typed := 0
	for _, ev := range thiefEvents {
		ar.clock.Set(ev.Release)
		_, err := g.ObserveKeystroke(ev)
		if errors.Is(err, ErrRevoked) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		typed++
	}
	st, _ = g.Status("s-alice")
	if !st.Revoked || st.Tier != TierTerminate {
		t.Fatalf("after %d keystrokes of another person the session is %v (trust %.0f), want terminated", typed, st.Tier, st.Trust)
	}
	if elapsed := ar.clock.Now().Sub(hijack); elapsed >= g.cfg.Tiers.HardTimeout {
		t.Fatalf("terminated only after %v: by the challenge timeout, not by the typing", elapsed)
	}
	t.Logf("terminated after %d keystrokes of the other participant (%s typing as %s)", typed, thief.id, owner.id)
	d = g.Authorize(context.Background(), "s-alice", "billing")
	if d.Allow || d.Outcome != OutcomeRevoked || d.Tier != TierTerminate {
		t.Fatalf("billing after termination: %s", d.Explain())
	}
	t.Log(d.Explain())

	// The audit log verifies and explains: the denial names the context rules and the typing.
	var denial *audit.Decision
	var revoked *audit.SessionEvent
	for _, r := range ar.records(t) {
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
	for _, want := range []string{"impossible travel", "new device", "typing unlike this user's"} {
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
// laptop and network so that the next session raises nothing.
func TestScenarioTravellerWithNewLaptop(t *testing.T) {
	pop := loadPopulation(t)
	for _, id := range pop.test[:3] {
		t.Run(id, func(t *testing.T) {
			traveller := newTypist(t, pop, id)
			r := newRig(t, Config{})
			r.scorers["bob"] = traveller.scorer
			end := r.history(t, "bob", historyStart)
			g := r.g

			// Monday 10:00 in Warsaw, two days after leaving the Chicago office.
			open := mondayAfter(end, 10, warsaw)
			r.clock.Set(open)
			if _, err := g.OpenSession("s-trip", "bob", open); err != nil {
				t.Fatal(err)
			}
			st, err := g.ObserveContext(contextAt("s-trip", placeWarsaw, "laptop-new", "hotel-wifi", open))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range st.Reasons {
				if r.Signal == SignalImpossibleTravel || r.Signal == SignalUnusualHour {
					t.Fatalf("a plausible trip at a usual local hour raised %v: %s", r.Signal, r.Text)
				}
			}
			if st.Tier > TierSoft {
				t.Fatalf("new laptop and network: tier %v, trust %.0f", st.Tier, st.Trust)
			}
			if d := g.Authorize(context.Background(), "s-trip", "docs.read"); !d.Allow {
				t.Fatalf("docs denied to the traveller: %s", d.Explain())
			}
			d := g.Authorize(context.Background(), "s-trip", "billing")
			if d.Allow {
				t.Fatalf("billing allowed on an unknown laptop without a step-up: %s", d.Explain())
			}

			// The application steps up; the traveller passes. Any challenge the typing raises
			// is passed too, as the genuine user would.
			c, err := g.StepUp("s-trip", TierSoft, open.Add(5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if st, err = g.AnswerChallenge("s-trip", c.ID, true, open.Add(20*time.Second)); err != nil {
				t.Fatal(err)
			}
			if st.Tier != TierMonitor || st.Trust < g.cfg.Tiers.SoftPassTrust {
				t.Fatalf("after passing: tier %v, trust %.0f", st.Tier, st.Trust)
			}
			for _, ev := range events("s-trip", traveller.unseen, open.Add(30*time.Second)) {
				r.clock.Set(ev.Release)
				st, err := g.ObserveKeystroke(ev)
				if err != nil {
					t.Fatal(err)
				}
				if st.Challenge.Open() {
					if st.Challenge.Tier != TierSoft {
						t.Fatalf("the traveller got a %v challenge: %v", st.Challenge.Tier, st.Reasons)
					}
					if _, err := g.AnswerChallenge("s-trip", st.Challenge.ID, true, ev.Release.Add(10*time.Second)); err != nil {
						t.Fatal(err)
					}
				}
			}
			st, _ = g.Status("s-trip")
			if st.Tier != TierMonitor {
				t.Fatalf("the traveller ends the session in tier %v (trust %.0f)", st.Tier, st.Trust)
			}
			if n := r.rec.count("s-trip", TransitionChallengeIssued); n > 2 {
				t.Errorf("%d challenges: the step-up and at most one more expected", n)
			}
			if d := g.Authorize(context.Background(), "s-trip", "billing"); !d.Allow {
				t.Errorf("after a session of genuine typing, billing is still denied: %s", d.Explain())
			}

			// The next session on the same laptop and network raises nothing.
			next := open.Add(24 * time.Hour)
			r.clock.Set(next)
			g.CloseSession("s-trip", next)
			if _, err := g.OpenSession("s-trip-2", "bob", next); err != nil {
				t.Fatal(err)
			}
			st, err = g.ObserveContext(contextAt("s-trip-2", placeWarsaw, "laptop-new", "hotel-wifi", next))
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range st.Reasons {
				if r.Impact < 0 {
					t.Errorf("the learned laptop and network still raise: %s", r.Text)
				}
			}
		})
	}
}

// TestScenarioGenuineLongSession: genuine users typing normally through a session, with a
// context refresh every minute at their desk, are not challenged. The typing is the unseen
// second half of each of the first 20 test participants (about 350 keystrokes each).
//
// The stand-in scorer (aalto_test.go) misjudges one of the 20 (participant 1529, whose second
// half drifts from the first): the test allows at most one challenged participant and names
// them. TestGenuineChallengeRate checks the rate over all test participants.
func TestScenarioGenuineLongSession(t *testing.T) {
	pop := loadPopulation(t)
	var challenged []string
	for _, id := range pop.test[:20] {
		n, keys, final := genuineSession(t, pop, id)
		if n > 0 {
			challenged = append(challenged, id)
			continue
		}
		if final.Tier != TierMonitor || final.Trust < 80 {
			t.Errorf("participant %s: after %d keystrokes, trust %.0f tier %v", id, keys, final.Trust, final.Tier)
		}
	}
	if len(challenged) > 1 {
		t.Fatalf("genuine sessions challenged: %v", challenged)
	}
	t.Logf("challenged genuine participants among the first 20: %v", challenged)
}

// genuineSession replays participant id's unseen typing as their own session, with context
// refreshes every minute, and returns the challenges issued, keystrokes and the final status.
func genuineSession(t *testing.T, pop typingPopulation, id string) (int, int, Status) {
	t.Helper()
	ty := newTypist(t, pop, id)
	r := newRig(t, Config{})
	r.scorers["carol"] = ty.scorer
	end := r.history(t, "carol", historyStart)
	open := mondayAfter(end, 10, chicago).AddDate(0, 0, 1)
	r.clock.Set(open)
	if _, err := r.g.OpenSession("s", "carol", open); err != nil {
		t.Fatal(err)
	}
	nextContext := open
	var st Status
	evs := events("s", ty.unseen, open.Add(time.Second))
	for _, ev := range evs {
		if !ev.Press.Before(nextContext) {
			r.clock.Set(ev.Press)
			if _, err := r.g.ObserveContext(contextAt("s", placeChicago, "laptop-carol", "office-net", ev.Press)); err != nil {
				t.Fatal(err)
			}
			nextContext = ev.Press.Add(time.Minute)
		}
		r.clock.Set(ev.Release)
		var err error
		if st, err = r.g.ObserveKeystroke(ev); err != nil {
			t.Fatalf("participant %s: %v", id, err)
		}
	}
	return r.rec.count("s", TransitionChallengeIssued), len(evs), st
}

// TestGenuineChallengeRate replays every test participant's unseen typing as a genuine session
// and checks false challenges per 1,000 genuine keystrokes against the aim (under 1).
func TestGenuineChallengeRate(t *testing.T) {
	if testing.Short() {
		t.Skip("replays all test participants")
	}
	pop := loadPopulation(t)
	challenges, keys, sessions := 0, 0, 0
	for _, id := range pop.test {
		n, k, _ := genuineSession(t, pop, id)
		challenges += n
		keys += k
		if n > 0 {
			sessions++
		}
	}
	rate := 1000 * float64(challenges) / float64(keys)
	t.Logf("%d participants, %d genuine keystrokes: %d challenges (%d sessions), %.3f per 1,000 keystrokes",
		len(pop.test), keys, challenges, sessions, rate)
	if rate >= 1 {
		t.Fatalf("%.3f false challenges per 1,000 genuine keystrokes, aim under 1", rate)
	}
}
