package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vigilauth/vigil/agent"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// box is an element's rectangle in the page.
type box struct{ X, Y, W, H float64 }

// pointer dispatches a synthetic mouser's samples as real mouse events, at their own times on
// the virtual clock, its screen (1000 x 700 pixels from (100, 100)) mapped onto the element in.
func (b *browser) pointer(ps []*vigilv1.PointerSample, in box) {
	b.t.Helper()
	b.do(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, p := range ps {
			at := time.UnixMicro(int64(p.AtMs * 1e3))
			ev := input.DispatchMouseEventParams{Type: input.DispatchMouseEventTypeMouseMoved, Timestamp: ts(at),
				X: in.X + (float64(p.X)-100)/1000*in.W, Y: in.Y + (float64(p.Y)-100)/700*in.H}
			switch p.Action {
			case "press":
				ev.Type, ev.Button, ev.ClickCount = input.DispatchMouseEventTypeMousePressed, input.MouseButtonLeft, 1
			case "release":
				ev.Type, ev.Button, ev.ClickCount = input.DispatchMouseEventTypeMouseReleased, input.MouseButtonLeft, 1
			}
			if _, err := cdp.Call(ctx, t, input.DispatchMouseEvent, ev); err != nil {
				return err
			}
		}
		return nil
	}))
	b.clock = time.UnixMicro(int64(ps[len(ps)-1].AtMs * 1e3)).Add(300 * time.Millisecond)
}

// TestBrowserMouseEnrolment: in the demo application, a user's pointer movement, captured by
// vigil.js from real mouse events, enrols their mouse model on the device, which then scores
// their movement (the user types nothing, so the windows judged are mouse windows): the session
// stays trusted.
func TestBrowserMouseEnrolment(t *testing.T) {
	exe := chromium(t)
	r := startAgentConfig(t, agent.Config{Dir: t.TempDir(), MouseEnrolActions: 15}, "", true)
	b := startBrowser(t, exe, 1200, 900)
	st := b.signIn(r.httpURL, "mia")
	var note box
	b.eval(`(() => { const r = document.getElementById("note").getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; })()`, &note)
	owner := newMouser(1)
	move := func(actions int) pageStatus {
		for done := 0; done < actions; done += 10 {
			ps, _ := owner.moves(10, b.now())
			b.pointer(ps, note)
			st = b.settle()
		}
		return st
	}
	move(20)
	r.a.WaitEnrolments()
	if !r.a.MouseEnrolled("mia") {
		t.Fatalf("20 point-and-clicks in the page did not enrol a mouse model (15 actions); status %+v", st)
	}
	// The guard's mouse window is 1200 pointer events, some 40 actions: enough movement for
	// a few windows.
	st = move(60)
	b.screenshot("mouse-enrolled")
	t.Logf("after 60 more point-and-clicks scored by the enrolled mouse model: trust %.1f (%s), %+v", st.Trust, st.Tier, st.Reasons)
	if st.Trust < 70 {
		t.Fatalf("the owner's own movement lowered trust to %.1f: %+v", st.Trust, st.Reasons)
	}
	// The user has no keystroke model: windows judged consistent are mouse windows.
	scored := false
	for _, rs := range st.Reasons {
		scored = scored || strings.Contains(rs.Text, "consistent with this user's baseline")
	}
	if !scored {
		t.Fatalf("no mouse window was scored: %+v", st.Reasons)
	}
}
