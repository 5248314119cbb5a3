package agent_test

// The agent in a real browser: Debian's chromium, driven over the DevTools protocol, loads the
// demo application the agent serves, and real Aalto participants "type" into it: their recorded
// key timings are replayed as real key events (Input.dispatchKeyEvent) carrying the recorded
// times as the events' timestamps, so the page's capture script sees exactly the participant's
// rhythm however fast the events are delivered. Between sentences the participants' pauses are
// capped at a second, which only removes idle time.

import (
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigilauth/vigil/models/keystroke"
)

// chromium finds the browser; in CI (VIGIL_CHROMIUM set by .ci/run) its absence fails the test.
func chromium(t *testing.T) string {
	path := os.Getenv("VIGIL_CHROMIUM")
	required := path != ""
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if required {
			t.Fatalf("VIGIL_CHROMIUM=%s: %v", path, err)
		}
		t.Skipf("chromium not found at %s (apt-get install chromium, or set VIGIL_CHROMIUM): skipping the browser test", path)
	}
	return path
}

// TestBrowserSession: a real participant enrols by typing in the demo application; after a
// restart of the agent the same participant's later typing keeps the transfer allowed; another
// participant's typing in the same session drops trust and the transfer is held with reasons on
// the page; the password typed to answer the challenge is never captured.
func TestBrowserSession(t *testing.T) {
	exe := chromium(t)
	if _, err := os.Stat(aaltoDir); err != nil {
		if os.Getenv("VIGIL_CHROMIUM") != "" {
			t.Fatalf("Aalto keystroke data not found at %s", aaltoDir)
		}
		t.Skipf("Aalto keystroke data not found at %s: skipping the browser test", aaltoDir)
	}
	files, err := keystroke.AaltoFiles(aaltoDir)
	if err != nil {
		t.Fatal(err)
	}

	// Pick the participants: in file order, the first pair (genuine, the next participant as
	// impostor) whose typing gives the expected outcome through the agent's API in-process.
	// The models' accuracy is measured elsewhere (vigil eval); this test checks that the
	// browser, the capture script and the API reproduce what the API alone decides.
	var genuine, impostor []replayKey
	var gid, iid string
	var want scenario
	tried := 0
	for i := 0; i+1 < len(files) && genuine == nil && tried < 30; i++ {
		p, _, err := keystroke.ReadAaltoFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		q, _, err := keystroke.ReadAaltoFile(files[i+1])
		if err != nil {
			t.Fatal(err)
		}
		g, im := plan(p.Keystrokes()), plan(q.Keystrokes())
		if len(g) < enrolKeys+genuineKeys || len(im) < impostorKeys {
			continue
		}
		tried++
		sc := inProcess(t, g, im)
		t.Logf("participants %s / %s in-process: %+v", p.ID, q.ID, sc)
		if sc.ok() {
			genuine, impostor, gid, iid, want = g, im, p.ID, q.ID, sc
		}
	}
	if genuine == nil {
		t.Fatalf("no pair of participants among the first %d behaves as the scenario needs", tried)
	}
	t.Logf("genuine participant %s, impostor %s (after %d pairs tried)", gid, iid, tried)

	dir := t.TempDir()
	r := startAgent(t, dir, "", true)
	base := r.httpURL

	b := startBrowser(t, exe, 1200, 900)

	// Session 1: sign in, enrol, keep typing.
	b.do(chromedp.Navigate(base + "/demo/"))
	b.screenshot("signin")
	st := b.signIn(base, "participant-"+gid)
	if st.Enrolment.Enrolled || st.Trust != 75 {
		t.Fatalf("a new user starts enrolled or at %v", st.Trust)
	}
	start := b.now()
	for i := 0; i < enrolKeys; i += chunk {
		b.typeKeys(genuine[i:i+chunk], start)
		st = b.settle()
		if st.Enrolment.Windows >= 5 && !st.Enrolment.Enrolled {
			r.a.WaitEnrolments()
			st = b.settle()
		}
		if i == 150 {
			b.screenshot("enrolling")
		}
	}
	t.Logf("session 1 after %d keystrokes: trust %.1f %s, enrolled %v (in-process %.1f)", enrolKeys, st.Trust, st.Tier, st.Enrolment.Enrolled, want.enrolledTrust)
	if !st.Enrolment.Enrolled || st.Trust < 70 {
		t.Fatalf("session 1: %+v", st)
	}
	var pushed string
	b.eval(`document.body.dataset.pushed || "0"`, &pushed)
	if pushed == "0" {
		t.Fatal("the page's live meter received no status over the WebSocket")
	}
	d := b.transfer()
	b.screenshot("enrolled-transfer-allowed")
	if !d.Allow {
		t.Fatalf("the enrolled owner's transfer: %+v", d)
	}
	b.click("signout")
	b.do(chromedp.WaitVisible(chromedp.ID("signin-btn")))

	// The agent restarts; the baseline survives.
	addr := strings.TrimPrefix(base, "http://")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = startAgent(t, dir, addr, true)
	if hist := r.a.History("participant-" + gid); len(hist) != 1 || hist[0].Denied != 0 || hist[0].Allowed < 1 {
		t.Fatalf("history after the restart: %+v", hist)
	}

	// Session 2: the same participant, later typing.
	st = b.signIn(base, "participant-"+gid)
	b.screenshot("after-restart-signed-in")
	if !st.Enrolment.Enrolled {
		t.Fatalf("after the restart the user is not enrolled: %+v", st)
	}
	t.Logf("session 2 starts at trust %.1f (in-process %.1f)", st.Trust, want.restartTrust)
	second := rebase(genuine[enrolKeys : enrolKeys+genuineKeys])
	start = b.now()
	b.typeKeys(second, start)
	st = b.settle()
	d = b.transfer()
	b.screenshot("genuine-transfer-allowed")
	t.Logf("session 2, the owner: trust %.1f %s; transfer %s (in-process %.1f)", st.Trust, st.Tier, d.Outcome, want.genuineTrust)
	if !d.Allow {
		t.Fatalf("the owner's later session: %+v", d)
	}

	// Someone else types in the same session.
	b.typeKeys(rebase(impostor[:impostorKeys]), start.Add(second[len(second)-1].release+maxPause))
	st = b.settle()
	d = b.transfer()
	b.screenshot("impostor-transfer-held")
	t.Logf("session 2, participant %s at the keyboard: trust %.1f %s; transfer %s: %s (in-process %.1f)", iid, st.Trust, st.Tier, d.Outcome, d.Explanation, want.impostorTrust)
	if d.Allow || len(d.Reasons) == 0 {
		t.Fatalf("the impostor's transfer: %+v", d)
	}
	var shown string
	b.eval(`document.getElementById("decision").innerText`, &shown)
	if !strings.Contains(shown, "Transfer") || !strings.Contains(shown, d.Reasons[0].Text) {
		t.Fatalf("the page does not show the decision's reasons: %q", shown)
	}

	// The challenge: the password typed into it is never captured.
	if d.Challenge != nil {
		var before int
		b.eval(`Vigil.sent()`, &before)
		b.do(chromedp.Focus(chromedp.ID("challenge-password")))
		b.typeKeys([]replayKey{{0, 90 * time.Millisecond, 'D'}, {150 * time.Millisecond, 240 * time.Millisecond, 'E'},
			{300 * time.Millisecond, 380 * time.Millisecond, 'M'}, {450 * time.Millisecond, 530 * time.Millisecond, 'O'}}, time.Time{})
		b.settle()
		var after, pending int
		b.eval(`Vigil.sent()`, &after)
		b.eval(`Vigil.pending()`, &pending)
		if after != before || pending != 0 {
			t.Fatalf("typing in the password field was captured: %d events sent before, %d after, %d pending", before, after, pending)
		}
		b.click("challenge-btn")
		b.do(chromedp.WaitNotVisible(chromedp.ID("challenge")))
		st = b.settle()
		b.screenshot("challenge-passed")
		t.Logf("after the challenge: trust %.1f %s", st.Trust, st.Tier)
		if d = b.transfer(); !d.Allow {
			t.Fatalf("the transfer after a passed challenge: %+v", d)
		}
		b.screenshot("retry-allowed")
	}
	if math.IsNaN(st.Trust) {
		t.Fatal("NaN trust")
	}
}
