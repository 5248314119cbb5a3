package behaviour_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/mouse"
)

// mouser is a synthetic mouse user: movements between random targets at a speed, with a bow
// and a pause before each click, all of their own.
type mouser struct {
	rng               *rand.Rand
	speed, bow, dwell float64
}

func newMouser(seed uint64) *mouser {
	r := rand.New(rand.NewPCG(seed, 0x30))
	return &mouser{rng: r, speed: 300 + 900*r.Float64(), bow: 0.3 * (r.Float64() - 0.5), dwell: 0.05 + 0.3*r.Float64()}
}

// events returns n guard mouse events of session from start: moves sampled every 16 ms, each
// movement ending in a press and release.
func (m *mouser) events(session string, n int, start time.Time) []guard.MouseEvent {
	var out []guard.MouseEvent
	at := start
	x, y := 500.0, 400.0
	for len(out) < n {
		tx, ty := 100+1000*m.rng.Float64(), 100+700*m.rng.Float64()
		dist := math.Hypot(tx-x, ty-y)
		steps := max(8, int(dist/m.speed/0.016))
		for i := 1; i <= steps; i++ {
			f := float64(i) / float64(steps)
			ease := f * f * (3 - 2*f)
			bow := m.bow * dist * math.Sin(math.Pi*f)
			px := x + (tx-x)*ease - bow*(ty-y)/dist
			py := y + (ty-y)*ease + bow*(tx-x)/dist
			at = at.Add(16 * time.Millisecond)
			out = append(out, guard.MouseEvent{Session: session, At: at, X: int32(px), Y: int32(py), Button: guard.ButtonNone, Action: guard.ActionMove})
		}
		at = at.Add(time.Duration(m.dwell * float64(time.Second) * (0.8 + 0.4*m.rng.Float64())))
		out = append(out, guard.MouseEvent{Session: session, At: at, X: int32(tx), Y: int32(ty), Button: guard.ButtonLeft, Action: guard.ActionPress})
		at = at.Add(time.Duration(60+40*m.rng.Float64()) * time.Millisecond)
		out = append(out, guard.MouseEvent{Session: session, At: at, X: int32(tx), Y: int32(ty), Button: guard.ButtonLeft, Action: guard.ActionRelease})
		x, y = tx, ty
	}
	return out[:n]
}

// mouseModel enrols a mouse model on the user's first events.
func mouseModel(tb testing.TB, u *mouser, events []guard.MouseEvent) *models.UserModel {
	tb.Helper()
	var evs []mouse.Event
	for _, e := range events {
		me := mouse.Event{T: e.At.Sub(events[0].At), X: float64(e.X), Y: float64(e.Y)}
		switch e.Action {
		case guard.ActionPress:
			me.Button, me.State = mouse.Left, mouse.Pressed
		case guard.ActionRelease:
			me.Button, me.State = mouse.Left, mouse.Released
		}
		evs = append(evs, me)
	}
	actions, _, err := mouse.Segment(evs, mouse.SegmentConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	var e models.Enrolment
	var ex mouse.Extractor
	f := make([]float64, mouse.NumFeatures)
	for _, a := range actions {
		if ex.Extract(f, a) != nil {
			continue
		}
		var w models.Window
		mouse.Window(&w, a.Type, f)
		e.Windows = append(e.Windows, w)
	}
	m, err := models.FitUserModel(context.Background(), mouse.NewLayout(), nil, e, models.UserModelConfig{Train: models.TrainConfig{Epochs: 5, Seed: 1}})
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// mouseWindows cuts events into the guard's windows of 200 every 100.
func mouseWindows(evs []guard.MouseEvent) [][]guard.MouseEvent {
	var out [][]guard.MouseEvent
	for i := 0; i+200 <= len(evs); i += 100 {
		out = append(out, evs[i:i+200])
	}
	return out
}

func TestScoreMouseTellsTheOwner(t *testing.T) {
	owner, other := newMouser(1), newMouser(2)
	m := mouseModel(t, owner, owner.events("enrol", 3000, t0))
	sc, err := behaviour.NewScorer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.ScoreMouse(owner.events("s", 200, t0)); !errors.Is(err, guard.ErrNotScored) {
		t.Fatalf("without a mouse model: %v", err)
	}
	if err := sc.SetMouseModel(m); err != nil {
		t.Fatal(err)
	}
	mean := func(u *mouser) float64 {
		var sum float64
		ws := mouseWindows(u.events("s", 2000, t0.Add(time.Hour)))
		for _, w := range ws {
			s, err := sc.ScoreMouse(w)
			if err != nil {
				t.Fatal(err)
			}
			sum += s.Anomaly
		}
		return sum / float64(len(ws))
	}
	own, someone := mean(owner), mean(other)
	t.Logf("mean mouse anomaly: owner %.3f, someone else %.3f", own, someone)
	if !(own < 0.4 && someone > 0.6) {
		t.Fatalf("mean mouse anomaly of the owner %.3f, of someone else %.3f", own, someone)
	}
	if st := sc.Stats(); st.MouseScored == 0 || st.MouseUnscored != 1 {
		t.Errorf("stats %+v", st)
	}
	ks, _ := enrolled(t, 1)
	if err := sc.SetMouseModel(ks); !errors.Is(err, behaviour.ErrMouseLayout) {
		t.Errorf("a keystroke model as the mouse model: %v", err)
	}
}

// BenchmarkScoreMouse measures one guard mouse window of 200 events: segmentation into actions,
// their features, the model's scores and the explanation.
func BenchmarkScoreMouse(b *testing.B) {
	owner := newMouser(1)
	sc, _ := behaviour.NewScorer(nil)
	if err := sc.SetMouseModel(mouseModel(b, owner, owner.events("enrol", 3000, t0))); err != nil {
		b.Fatal(err)
	}
	windows := mouseWindows(owner.events("s", 4000, t0))
	for _, w := range windows {
		sc.ScoreMouse(w)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := sc.ScoreMouse(windows[i%len(windows)]); err != nil {
			b.Fatal(err)
		}
	}
}

func TestScoreMouseAllocatesNothing(t *testing.T) {
	owner := newMouser(3)
	sc, _ := behaviour.NewScorer(nil)
	if err := sc.SetMouseModel(mouseModel(t, owner, owner.events("enrol", 2000, t0))); err != nil {
		t.Fatal(err)
	}
	windows := mouseWindows(owner.events("s", 1000, t0))
	for _, w := range windows {
		sc.ScoreMouse(w) // grow the buffers
	}
	i := 0
	if a := testing.AllocsPerRun(50, func() {
		sc.ScoreMouse(windows[i%len(windows)])
		i++
	}); a != 0 {
		t.Fatalf("%v allocations per mouse window", a)
	}
}
