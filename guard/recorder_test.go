package guard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vigilauth/vigil/audit"
)

func testAuditLog(t *testing.T) (*audit.Log, *bytes.Buffer, audit.Verifier) {
	t.Helper()
	signer, _, err := audit.GenerateMLDSA65(nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	log, err := audit.New(&buf, audit.Head{}, audit.Config{Signer: signer, CheckpointEvery: 4})
	if err != nil {
		t.Fatal(err)
	}
	return log, &buf, signer.Public()
}

// TestAuditQueueOverflowLeavesAGap fills the queue with no writer running: recording never
// blocks, the overflow is counted, and the log shows it as a gap that Verify reports.
func TestAuditQueueOverflowLeavesAGap(t *testing.T) {
	q := NewAuditQueue(3)
	g, err := New(Config{Recorder: q}, mustPolicy(t, testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	must(t)(g.OpenSession("s", "alice", now)) // 1 transition queued
	done := make(chan struct{})
	go func() {
		for i := 0; i < 10; i++ {
			g.Authorize(context.Background(), "s", "billing")
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("recording blocked on a full queue")
	}
	if q.Dropped() != 8 {
		t.Fatalf("dropped %d, want 8 (capacity 3, 11 entries)", q.Dropped())
	}
	log, buf, v := testAuditLog(t)
	if err := q.Drain(log, now); err != nil {
		t.Fatal(err)
	}
	if err := log.Checkpoint(now); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(buf, v)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Dropped != 8 || rep.Decisions != 2 || rep.SessionEvents != 1 {
		t.Fatalf("report %+v", rep)
	}
}

func TestAuditQueueRunWritesAndSignsUntilCancelled(t *testing.T) {
	q := NewAuditQueue(0)
	g, err := New(Config{Recorder: q}, mustPolicy(t, testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	log, buf, v := testAuditLog(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- q.Run(ctx, log, 10*time.Millisecond) }()

	now := time.Now()
	must(t)(g.OpenSession("s", "alice", now))
	long := strings.Repeat("x", 5000) // an absurd resource name still gets a (shortened) record
	for _, res := range []string{"docs.read", "billing", long, ""} {
		g.Authorize(context.Background(), "s", res)
	}
	must(t)(g.Feedback("s", VerdictCompromised, now))
	g.Authorize(context.Background(), "s", "docs.read")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(bytes.NewReader(buf.Bytes()), v)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Decisions != 5 || rep.SessionEvents != 3 || rep.Dropped != 0 || rep.Unsigned() != 1 {
		// opened, feedback_compromised, revoked; the final checkpoint is the one unsigned record.
		t.Fatalf("report %+v", rep)
	}
	var events []string
	var outcomes []string
	for _, line := range bytes.SplitAfter(buf.Bytes(), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		r, err := audit.DecodeRecord(line)
		if err != nil {
			t.Fatal(err)
		}
		if r.Session != nil {
			events = append(events, r.Session.Event+":"+r.Session.From+">"+r.Session.To)
		}
		if r.Decision != nil {
			outcomes = append(outcomes, r.Decision.Outcome)
		}
	}
	if got := strings.Join(events, " "); got != "opened:none>monitor feedback_compromised:monitor>terminate revoked:terminate>terminate" {
		t.Errorf("session events: %s", got)
	}
	if got := strings.Join(outcomes, " "); got != "allowed low_trust unknown_resource unknown_resource revoked" {
		t.Errorf("outcomes: %s", got)
	}
}

type brokenWriter struct{}

func (brokenWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestAuditQueueRunStopsOnWriteError(t *testing.T) {
	q := NewAuditQueue(0)
	signer, _, _ := audit.GenerateMLDSA65(nil)
	log, _ := audit.New(brokenWriter{}, audit.Head{}, audit.Config{Signer: signer})
	q.RecordDecision(Decision{Session: "s", Resource: "r", Outcome: OutcomeAllowed, Tier: TierMonitor, At: time.Now()})
	err := q.Run(context.Background(), log, time.Second)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Run = %v", err)
	}
}

func TestWindow(t *testing.T) {
	w := newWindow[int](4, 2, 1)
	var got [][]int
	for i := 1; i <= 9; i++ {
		if out, ok := w.push(i); ok {
			got = append(got, append([]int(nil), out...))
		}
	}
	want := [][]int{{1, 2, 3, 4}, {3, 4, 5, 6}, {5, 6, 7, 8}}
	if len(got) != len(want) {
		t.Fatalf("windows %v, want %v", got, want)
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Fatalf("windows %v, want %v", got, want)
			}
		}
	}
}

// TestAuditQueueQueued: a writer sleeping on Queued is woken once for the entries recorded
// since its last Drain began, not once per entry, and again for the first entry after it; a
// full queue's drops wake it too, so that their gap is written.
func TestAuditQueueQueued(t *testing.T) {
	q := NewAuditQueue(2)
	log, _, _ := testAuditLog(t)
	ready := func() bool {
		select {
		case <-q.Queued():
			return true
		default:
			return false
		}
	}
	d := Decision{Session: "s", Resource: "billing", At: time.Now()}
	steps := []struct {
		name  string
		do    func()
		ready bool
	}{
		{"nothing recorded", func() {}, false},
		{"three entries, one dropped", func() { q.RecordDecision(d); q.RecordDecision(d); q.RecordDecision(d) }, true},
		{"the token was taken", func() {}, false},
		{"another entry before the drain", func() { q.RecordDecision(d) }, false},
		{"the drain", func() {
			if err := q.Drain(log, time.Now()); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"the first entry after the drain", func() { q.RecordDecision(d) }, true},
		{"the second", func() { q.RecordDecision(d) }, false},
	}
	for _, s := range steps {
		s.do()
		if got := ready(); got != s.ready {
			t.Fatalf("after %s: woken %v, want %v", s.name, got, s.ready)
		}
	}
	if q.Dropped() != 2 {
		t.Fatalf("dropped %d, want 2", q.Dropped())
	}
}

// TestLongSessionStaysInTheLog: a genuine session whose trust dips and recovers again and again
// sums its gains past the trust scale, which the audit format refuses in a reason; the reason
// says at most +100, so every decision and change of standing of the session is logged (they
// were all dropped, each leaving a gap said to be a full queue).
func TestLongSessionStaysInTheLog(t *testing.T) {
	q := NewAuditQueue(0)
	g, err := New(Config{Recorder: q}, mustPolicy(t, testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(-6 * time.Hour)
	must(t)(g.OpenSession("s", "alice", at))
	typeUntilFull := func() {
		for i := 0; i < 120; i++ {
			at = at.Add(5 * time.Second)
			must(t)(g.ObserveBehaviour("s", at, 0, nil))
		}
	}
	typeUntilFull()
	for cycle := 0; cycle < 4; cycle++ {
		// One odd window (too little for a challenge from 100), then the owner's typing.
		at = at.Add(time.Second)
		must(t)(g.ObserveBehaviour("s", at, 0.95, nil))
		typeUntilFull()
	}
	st, err := g.Status("s")
	if err != nil {
		t.Fatal(err)
	}
	gained := false
	for _, r := range st.Reasons {
		if r.Impact > MaxTrust {
			t.Errorf("reason %q moves trust by more than the whole scale", r)
		}
		gained = gained || strings.HasPrefix(r.Text, "behaviour consistent") && r.Impact >= MaxTrust
	}
	if !gained {
		t.Fatalf("the summed gain did not reach the trust scale, the test no longer tests the cap: %v", st.Reasons)
	}
	g.Authorize(context.Background(), "s", "docs.read")
	g.Authorize(context.Background(), "s", "billing")
	if err := g.CloseSession("s", at); err != nil {
		t.Fatal(err)
	}
	log, buf, v := testAuditLog(t)
	if err := q.Drain(log, at); err != nil {
		t.Fatal(err)
	}
	if err := log.Checkpoint(at); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(bytes.NewReader(buf.Bytes()), v)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Dropped != 0 || rep.Decisions != 2 || rep.SessionEvents != 2 {
		t.Fatalf("log: %d decisions, %d session events, %d dropped; want 2, 2 (opened, closed), 0", rep.Decisions, rep.SessionEvents, rep.Dropped)
	}
}

// TestAuditReasonsFitTheFormat: a Recorder fed by another source than the ledger still gets
// every impact into the log's range.
func TestAuditReasonsFitTheFormat(t *testing.T) {
	got := auditReasons([]Reason{{Signal: SignalBehaviour, Impact: 122.4}, {Signal: SignalFeedback, Impact: -250}, {Signal: SignalNewDevice, Impact: -15.004}})
	for i, want := range []float64{100, -100, -15} {
		if got[i].Impact != want {
			t.Errorf("reason %d: impact %v, want %v", i, got[i].Impact, want)
		}
	}
}

// TestInvalidEntryGapIsNotAFullQueue: an entry the log format refuses is dropped, and its gap
// says so, apart from the entries a full queue lost.
func TestInvalidEntryGapIsNotAFullQueue(t *testing.T) {
	q := NewAuditQueue(2)
	now := time.Now()
	good := Decision{Session: "s", Resource: "r", Outcome: OutcomeAllowed, Tier: TierMonitor, At: now, Trust: 90}
	bad := good
	bad.Trust = MaxTrust + 1 // no guard makes it; the log refuses it
	q.RecordDecision(bad)
	q.RecordDecision(good)
	q.RecordDecision(good) // the queue is full
	log, buf, v := testAuditLog(t)
	if err := q.Drain(log, now); err != nil {
		t.Fatal(err)
	}
	q.RecordDecision(bad)
	if err := q.Drain(log, now); err != nil {
		t.Fatal(err)
	}
	if err := log.Checkpoint(now); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(bytes.NewReader(buf.Bytes()), v)
	if err != nil {
		t.Fatal(err)
	}
	want := []audit.GapAt{{Seq: 1, Dropped: 1}, {Seq: 2, Dropped: 1, Invalid: 1}, {Seq: 4, Dropped: 1, Invalid: 1}}
	if fmt.Sprint(rep.Gaps) != fmt.Sprint(want) || rep.Dropped != 3 || rep.Invalid != 2 || rep.Decisions != 1 || q.Dropped() != 3 {
		t.Fatalf("gaps %v (dropped %d, invalid %d, queue says %d), %d decisions; want %v, 3, 2, 3, 1", rep.Gaps, rep.Dropped, rep.Invalid, q.Dropped(), rep.Decisions, want)
	}
}

// TestAuditNamesAreUTF8: names that are not UTF-8, or so long that they are cut, reach the log
// as UTF-8, and the log verifies: a cut inside a character, or bytes that are not UTF-8, were
// written, after which the log never verified again (a review).
func TestAuditNamesAreUTF8(t *testing.T) {
	long := "a" + strings.Repeat("é", 200) // cut at byte 248, inside an é
	for _, name := range []string{long, "bad\xffname", strings.Repeat("€", 100) + "\xe2\x82"} {
		q := NewAuditQueue(0)
		g, err := New(Config{Recorder: q}, mustPolicy(t, testPolicy))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		id := name
		if len(id) > MaxIDBytes {
			id = id[:MaxIDBytes-1] // cut inside a character too
		}
		must(t)(g.OpenSession(id, id, now))
		g.Authorize(context.Background(), id, name)
		g.Authorize(context.Background(), name, "docs.read") // no such session
		if err := g.CloseSession(id, now); err != nil {
			t.Fatal(err)
		}
		log, buf, v := testAuditLog(t)
		if err := q.Drain(log, now); err != nil {
			t.Fatal(err)
		}
		if err := log.Checkpoint(now); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify(bytes.NewReader(buf.Bytes()), v)
		if err != nil {
			t.Fatalf("name %.12q: the log does not verify: %v", name, err)
		}
		if rep.Decisions != 2 || rep.SessionEvents != 2 || rep.Dropped != 0 {
			t.Fatalf("name %.12q: %d decisions, %d session events, %d dropped; want 2, 2, 0", name, rep.Decisions, rep.SessionEvents, rep.Dropped)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"", "-"},
		{"bad\xffname", "bad\ufffdname"},
		{long, long[:247] + "…"},
		{strings.Repeat("x", audit.MaxNameBytes), strings.Repeat("x", audit.MaxNameBytes)},
		{strings.Repeat("x", audit.MaxNameBytes+1), strings.Repeat("x", audit.MaxNameBytes-8) + "…"},
	} {
		if got := auditName(c.in); got != c.want {
			t.Errorf("auditName(%.12q) = %.12q… (%d bytes), want %d bytes", c.in, got, len(got), len(c.want))
		}
	}
	text := strings.Repeat("ü", audit.MaxTextBytes)
	if got := auditReasons([]Reason{{Signal: SignalBehaviour, Text: text}})[0].Text; len(got) > audit.MaxTextBytes || !utf8.ValidString(got) {
		t.Errorf("a reason of %d bytes is logged as %d bytes, valid UTF-8 %v", len(text), len(got), utf8.ValidString(got))
	}
}
