package agent_test

// The agent in a real browser: Debian's chromium, driven over the DevTools protocol, loads the
// demo application the agent serves, and real Aalto participants "type" into it: their recorded
// key timings are replayed as real key events (Input.dispatchKeyEvent) carrying the recorded
// times as the events' timestamps, so the page's capture script sees exactly the participant's
// rhythm however fast the events are delivered. Between sentences the participants' pauses are
// capped at a second, which only removes idle time.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// aaltoDir is ../shared/datasets relative to the repository root.
const aaltoDir = "../../shared/datasets/aalto-keystrokes"

// The typing plan: the genuine participant enrols and keeps typing in the first session
// (enrolKeys), types genuineKeys more in the second session after the agent's restart, and
// then the other participant types impostorKeys in that same session.
const (
	enrolKeys    = 500
	genuineKeys  = 150
	impostorKeys = 150
	chunk        = 50
	maxPause     = time.Second
)

// replayKey is one keystroke of the plan: offsets from the start of the typing.
type replayKey struct {
	press, release time.Duration // release == press: unknown
	code           int
}

// replayable leaves out keys that would act on the browser rather than type: Tab moves the
// focus, function keys reload, modifiers other than shift start shortcuts.
func replayable(code int) bool {
	switch {
	case code == 9 || code == 27 || code == 17 || code == 18 || code == 91 || code == 92 || code == 93:
		return false
	case code >= 112 && code <= 135:
		return false
	}
	return code > 0 && code <= 1023
}

// plan turns a participant's keystrokes into replayable keys in press order, pauses capped.
func plan(ks []keystroke.Keystroke) []replayKey {
	var out []replayKey
	var shift, last time.Duration
	for i, k := range ks {
		if !replayable(k.Code) || (i > 0 && k.Press < last) {
			continue
		}
		if i > 0 && k.Press-last > maxPause {
			shift += k.Press - last - maxPause
		}
		last = k.Press
		r := replayKey{press: k.Press - shift, code: k.Code}
		r.release = r.press
		if h, ok := k.Hold(); ok {
			r.release = r.press + h
		}
		out = append(out, r)
	}
	if len(out) > 0 {
		origin := out[0].press
		for i := range out {
			out[i].press -= origin
			out[i].release -= origin
		}
	}
	return out
}

// rebase shifts keys so the first press is at offset 0.
func rebase(keys []replayKey) []replayKey {
	out := append([]replayKey(nil), keys...)
	for i := range out {
		out[i].press -= keys[0].press
		out[i].release -= keys[0].press
	}
	return out
}

// timings converts planned keys to the API's key timings from start, with the capture
// script's reduction of key codes to their class, as the browser would send them.
func timings(keys []replayKey, start time.Time) []*vigilv1.KeyTiming {
	out := make([]*vigilv1.KeyTiming, len(keys))
	base := float64(start.UnixNano()) / 1e6
	for i, k := range keys {
		out[i] = &vigilv1.KeyTiming{PressMs: base + ms(k.press), ReleaseMs: base + ms(k.release), Code: uint32(keyClass(k.code))}
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// keyClass is vigil.js's reduction of a keyCode, in Go.
func keyClass(c int) int {
	switch {
	case c >= 65 && c <= 90, c == 32, c == 16, c == 8, c == 190, c == 188, c == 222, c == 20:
		return c
	case c == 110:
		return 190
	case c >= 48 && c <= 57, c >= 96 && c <= 105:
		return 48
	case c >= 37 && c <= 40:
		return 37
	case c == 186 || c == 187 || c == 189 || c == 191 || c == 192 || c >= 219 && c <= 221 || c == 59 || c == 61 || c == 173 || c == 45 || c >= 106 && c <= 111:
		return 186
	}
	return 1
}

// scenario is the outcome of the plan for a pair of participants.
type scenario struct {
	enrolledTrust, restartTrust, genuineTrust, impostorTrust float64
	genuineAllowed, impostorAllowed                          bool
}

func (s scenario) ok() bool {
	return s.genuineAllowed && !s.impostorAllowed && s.enrolledTrust >= 70
}

// inProcess runs the plan through the agent's gRPC API, without a browser, to pick the
// participants: the browser run must then reproduce its outcome through the page.
func inProcess(t *testing.T, genuine, impostor []replayKey) scenario {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	var sc scenario
	r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "one", User: "g"})
	start := time.Now()
	var st *vigilv1.SessionStatus
	for i := 0; i < enrolKeys; i += chunk {
		st = sendTyping(t, r.grpc, ctx, "one", timings(genuine[i:i+chunk], start))
		r.a.WaitEnrolments()
	}
	sc.enrolledTrust = st.Trust
	r.grpc.EndSession(ctx, &vigilv1.EndSessionRequest{Session: "one"})
	r.stop()
	r = startAgent(t, dir, "", false)
	ctx = as(context.Background(), r.secret)
	st, _ = r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "two", User: "g"})
	sc.restartTrust = st.Trust
	second := rebase(genuine[enrolKeys : enrolKeys+genuineKeys])
	start = time.Now()
	st = sendTyping(t, r.grpc, ctx, "two", timings(second, start))
	sc.genuineTrust = st.Trust
	d, _ := r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: "two", Resource: "transfer"})
	sc.genuineAllowed = d.GetAllow()
	st = sendTyping(t, r.grpc, ctx, "two", timings(rebase(impostor[:impostorKeys]), start.Add(second[len(second)-1].release+maxPause)))
	sc.impostorTrust = st.Trust
	d, _ = r.grpc.Authorize(ctx, &vigilv1.AuthorizeRequest{Session: "two", Resource: "transfer"})
	sc.impostorAllowed = d.GetAllow()
	return sc
}

// browser is a chromium tab with a virtual input clock: every input event it dispatches
// carries a timestamp from it, never earlier than the last one, so keys and clicks reach the
// page in the order and at the spacing they were planned.
type browser struct {
	t     *testing.T
	ctx   context.Context
	clock time.Time
	shots string
	n     int
}

func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// eval evaluates JavaScript, awaiting a promise, and decodes the result into v.
func (b *browser) eval(js string, v any) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", js, err)
	}
	if v != nil {
		if err := json.Unmarshal(raw, v); err != nil {
			b.t.Fatalf("%s: %s: %v", js, raw, err)
		}
	}
}

func (b *browser) now() time.Time {
	if n := time.Now().Add(50 * time.Millisecond); n.After(b.clock) {
		b.clock = n
	}
	return b.clock
}

func ts(t time.Time) input.TimeSinceEpoch { return input.TimeSinceEpoch(float64(t.UnixNano()) / 1e9) }

// keyText is what a key types, for the text area to show; "" for keys that type nothing.
func keyText(code int, shift bool) (key, text string) {
	switch {
	case code >= 65 && code <= 90:
		c := string(rune(code + 32))
		if shift {
			c = strings.ToUpper(c)
		}
		return c, c
	case code >= 48 && code <= 57:
		return string(rune(code)), string(rune(code))
	case code == 32:
		return " ", " "
	case code == 190:
		return ".", "."
	case code == 188:
		return ",", ","
	case code == 222:
		return "'", "'"
	case code == 8:
		return "Backspace", ""
	case code == 16:
		return "Shift", ""
	case code == 13:
		return "Enter", "\r"
	}
	return "Unidentified", ""
}

// typeKeys dispatches keys as real key events, press and release at their planned offsets
// from start (the virtual clock's now if zero).
func (b *browser) typeKeys(keys []replayKey, start time.Time) {
	b.t.Helper()
	type ev struct {
		at   time.Time
		down bool
		code int
	}
	if start.IsZero() {
		start = b.now()
	}
	if first := start.Add(keys[0].press); first.Before(time.Now()) {
		b.t.Fatalf("typing planned at %v, before the browser's clock: its timestamps would be replaced", first)
	}
	evs := make([]ev, 0, 2*len(keys))
	for _, k := range keys {
		evs = append(evs, ev{start.Add(k.press), true, k.code}, ev{start.Add(k.release), false, k.code})
	}
	// In time order; at equal times a press before its own release.
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && (evs[j].at.Before(evs[j-1].at)); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		shift := false
		for _, e := range evs {
			key, text := keyText(e.code, shift)
			p := input.DispatchKeyEventParams{Type: input.DispatchKeyEventTypeKeyUp, WindowsVirtualKeyCode: int64(e.code), Key: key, Timestamp: ts(e.at)}
			if e.down {
				p.Type, p.Text = input.DispatchKeyEventTypeKeyDown, text
				if text == "" {
					p.Type = input.DispatchKeyEventTypeRawKeyDown
				}
			}
			if e.code == 16 {
				shift = e.down
			}
			if shift {
				p.Modifiers = 8
			}
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, p); err != nil {
				return err
			}
		}
		return nil
	}))
	b.clock = evs[len(evs)-1].at.Add(300 * time.Millisecond)
}

// click clicks the centre of the element with id, with pointer events on the virtual clock.
func (b *browser) click(id string) {
	b.t.Helper()
	var box struct{ X, Y float64 }
	b.eval(fmt.Sprintf(`(() => { const r = document.getElementById(%q).getBoundingClientRect(); return {x: r.x + r.width/2, y: r.y + r.height/2}; })()`, id), &box)
	at := b.now()
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for i, typ := range []input.DispatchMouseEventType{input.DispatchMouseEventTypeMouseMoved, input.DispatchMouseEventTypeMousePressed, input.DispatchMouseEventTypeMouseReleased} {
			p := input.DispatchMouseEventParams{Type: typ, X: box.X, Y: box.Y, Timestamp: ts(at.Add(time.Duration(i) * 60 * time.Millisecond))}
			if i > 0 {
				p.Button, p.ClickCount = input.MouseButtonLeft, 1
			}
			if _, err := cdp.Call(ctx, t, input.DispatchMouseEvent, p); err != nil {
				return err
			}
		}
		return nil
	}))
	b.clock = at.Add(200 * time.Millisecond)
}

// settle sends everything captured and returns the session's status as the page shows it.
func (b *browser) settle() pageStatus {
	b.t.Helper()
	var st pageStatus
	b.eval(`Vigil.flush().then(() => Vigil.flush()).then(() => Vigil.status())`, &st)
	time.Sleep(50 * time.Millisecond) // let the page render the status
	return st
}

type pageStatus struct {
	Trust     float64
	Tier      string
	Enrolment struct {
		Enrolled bool
		Windows  int
	}
	Reasons []struct{ Text string }
}

type pageDecision struct {
	Outcome     string
	Explanation string
	Reasons     []struct{ Text string }
	Allow       bool
	Challenge   *struct{ ID string }
}

// transfer clicks the transfer button and returns the decision the page received.
func (b *browser) transfer() pageDecision {
	b.t.Helper()
	b.eval(`delete document.body.dataset.decision; 1`, nil)
	b.click("transfer")
	b.do(chromedp.WaitReady(chromedp.CSS(`body[data-decision]`)))
	var d pageDecision
	b.eval(`window.lastDecision`, &d)
	return d
}

// screenshot writes the page as a PNG artefact.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.n++
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
}

func (b *browser) signIn(base, user string) pageStatus {
	b.t.Helper()
	b.do(chromedp.Navigate(base+"/demo/"),
		chromedp.WaitVisible(chromedp.ID("signin-btn")),
		chromedp.SetValue(chromedp.ID("user"), user),
		chromedp.SetValue(chromedp.ID("password"), "demo"))
	b.click("signin-btn")
	b.do(chromedp.WaitVisible(chromedp.ID("note")), chromedp.Focus(chromedp.ID("note")))
	return b.settle()
}

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

	shots := os.Getenv("VIGIL_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := startAgent(t, dir, "", true)
	base := r.httpURL

	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 900))
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	// The first run starts the browser and must not carry a timeout: it would stop the browser.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, shots: shots}

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
