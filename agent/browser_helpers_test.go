package agent_test

// Helpers of TestBrowserSession: the typing plan, the reference run through the API alone, and
// a chromium tab whose input events carry times from a virtual clock.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
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

// startBrowser starts a headless chromium at exe, a tab of w by h pixels; it is stopped when
// the test ends. Screenshots go to $VIGIL_SCREENSHOTS, or the test's artefact directory.
func startBrowser(t *testing.T, exe string, w, h int) *browser {
	t.Helper()
	shots := os.Getenv("VIGIL_SCREENSHOTS")
	if shots == "" {
		shots = t.ArtifactDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(w, h))
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	// The first run starts the browser and must not carry a timeout: it would stop the browser.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, shots: shots}
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
