package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

const typedSecret = "my new bank pin is the name of my first dog rex and the vault code is kept in the blue folder " +
	"in the top drawer of my desk at home. please wire the money to the account of john smith before friday. " +
	"the password for the payroll server is horsebattery and the backup one is stapleclock. "

// typed returns text as key timings of a steady typist, starting now.
func typed(text string) []*vigilv1.KeyTiming {
	var keys []*vigilv1.KeyTiming
	at := float64(time.Now().UnixMilli())
	for i, r := range strings.ToUpper(text) {
		code := uint32(r)
		switch r {
		case ',':
			code = 188
		case '.':
			code = 190
		}
		at += 120 + float64(i%7)*15
		keys = append(keys, &vigilv1.KeyTiming{PressMs: at, ReleaseMs: at + 80 + float64(i%5)*10, Code: code})
	}
	return keys
}

// TestAttackStateSpellsWhatWasTyped: whoever reads the agent's directory (a backup, another
// process of the user) decrypts state.vgl with device.key beside it and reads the hold events
// of the stored keystroke windows in order. They came in typing order, one key's hold after the
// next, and spelt the user's text with its timings, a password among it (found by review).
// The windows are now kept with their events sorted; the enrolment and the windows a verdict
// taught are both checked.
func TestAttackStateSpellsWhatWasTyped(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	ctx := as(context.Background(), r.secret)
	if _, err := r.grpc.StartSession(ctx, &vigilv1.StartSessionRequest{Session: "s1", User: "alice"}); err != nil {
		t.Fatal(err)
	}
	sendTyping(t, r.grpc, ctx, "s1", typed(typedSecret))
	r.a.WaitEnrolments()
	sendTyping(t, r.grpc, ctx, "s1", typed(typedSecret))
	if _, err := r.grpc.Feedback(ctx, &vigilv1.FeedbackRequest{Session: "s1", Verdict: "genuine"}); err != nil {
		t.Fatal(err)
	}
	if err := r.a.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := agent.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	us := st.Users["alice"]
	if len(us.Enrolment.Windows) == 0 || len(us.Learnt) == 0 {
		t.Fatalf("%d enrolment and %d learnt windows kept; the test needs both", len(us.Enrolment.Windows), len(us.Learnt))
	}
	// Five letters in a row of the text, read off the stored holds, would spell it.
	words := map[string]bool{}
	for w := range strings.FieldsSeq(typedSecret) {
		for i := 0; i+5 <= len(w); i++ {
			words[w[i:i+5]] = true
		}
	}
	for i, w := range append(slices.Clone(us.Enrolment.Windows), us.Learnt...) {
		var holds strings.Builder
		for _, e := range w.Events {
			if e.Bucket < keystroke.NumKeyClasses {
				holds.WriteString(strings.ToLower(keystroke.KeyClassName(e.Bucket)))
			}
		}
		s := holds.String()
		for j := 0; j+5 <= len(s); j++ {
			if words[s[j:j+5]] {
				t.Fatalf("window %d's stored holds read %q, which spells %q of the typed text", i, s, s[j:j+5])
			}
		}
		if !slices.IsSortedFunc(w.Events, func(a, b models.Event) int { return a.Bucket - b.Bucket }) {
			t.Fatalf("window %d's events are kept in the order they came", i)
		}
	}
}

// TestAttackStateTracesClicks: the stored mouse actions carry each action's start-to-end move;
// kept in the order made they add up to where the user clicked, an on-screen PIN pad's digits
// (found by review). The actions are now kept in a random order.
func TestAttackStateTracesClicks(t *testing.T) {
	dir := t.TempDir()
	r := startAgent(t, dir, "", false)
	call := func(method string, body any) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", r.httpURL+"/v1/agent/"+method, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+r.secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %s", method, resp.Status)
		}
	}
	call("StartSession", map[string]any{"session": "s1", "user": "alice"})
	// Clicks on a 3 x 4 keypad; each move's length, in digits, tells where in the sequence it was.
	pin := []int{5, 9, 1, 7, 3, 0, 2, 8, 4, 6, 1, 1, 9, 0, 5, 7}
	pos := func(d int) (float64, float64) {
		if d == 0 {
			return 490, 570
		}
		return 400 + float64((d-1)%3)*90, 300 + float64((d-1)/3)*90
	}
	at := float64(time.Now().UnixMilli())
	x, y := 200.0, 200.0
	var evs []map[string]any
	for _, d := range pin {
		tx, ty := pos(d)
		for i := 1; i <= 20; i++ {
			f := float64(i) / 20
			at += 10
			evs = append(evs, map[string]any{"atMs": at, "x": int(x + (tx-x)*f + 15*math.Sin(math.Pi*f)), "y": int(y + (ty-y)*f), "button": "none", "action": "move"})
		}
		at += 150
		evs = append(evs, map[string]any{"atMs": at, "x": int(tx), "y": int(ty), "button": "left", "action": "press"})
		at += 90
		evs = append(evs, map[string]any{"atMs": at, "x": int(tx), "y": int(ty), "button": "left", "action": "release"})
		at += 400
		x, y = tx, ty
	}
	for i := range 250 { // moving on ends the last action
		at += 9
		evs = append(evs, map[string]any{"atMs": at, "x": 100 + i, "y": 100, "button": "none", "action": "move"})
	}
	for i := 0; i < len(evs); i += 100 {
		call("SendEvents", map[string]any{"session": "s1", "pointer": evs[i:min(i+100, len(evs))]})
	}
	if err := r.a.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := agent.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	ws := st.Users["alice"].MouseEnrolment.Windows
	if len(ws) < len(pin)-2 {
		t.Fatalf("%d mouse actions kept of %d clicks; the test needs most of them", len(ws), len(pin))
	}
	// In the order made, the moves (distance times the direction's cosine and sine, in keys)
	// follow the PIN.
	var moves, made [][2]float64
	px, py := pos(pin[0])
	for _, d := range pin[1:] {
		nx, ny := pos(d)
		made = append(made, [2]float64{math.Round((nx - px) / 90), math.Round((ny - py) / 90)})
		px, py = nx, ny
	}
	for _, w := range ws {
		dist := math.Expm1(w.Dense[2])
		moves = append(moves, [2]float64{math.Round(dist * w.Dense[23] / 90), math.Round(dist * w.Dense[24] / 90)})
	}
	// The first stored action may be the move to the first digit, or the last one cut: look
	// for a run of 8 of the clicks' moves, in order, anywhere in the stored ones (by chance
	// in about 5 of a million shuffles).
	const run = 8
	for i := 0; i+run <= len(moves); i++ {
		for j := 0; j+run <= len(made); j++ {
			if slices.Equal(moves[i:i+run], made[j:j+run]) {
				t.Fatalf("the stored actions' moves %v follow the clicks' %v in order", moves, made)
			}
		}
	}
}
