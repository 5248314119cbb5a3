package mouse

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/models"
)

const balabitDir = "../../../shared/datasets/balabit-mouse"

func TestReadBalabitCopesWithBadRows(t *testing.T) {
	in := strings.Join([]string{
		"record timestamp,client timestamp,button,state,x,y",
		"0.0,10.0,NoButton,Move,100,100",
		"0.1,10.1,NoButton,Move,110,100",
		"0.1,10.05,NoButton,Move,120,100", // earlier than the last kept row
		"0.2,10.2,NoButton,Move,65535,65535",
		"0.2,10.2,Left,Wiggle,1,1",
		"0.2,abc,Left,Pressed,1,1",
		"only,three,fields",
		"record timestamp,client timestamp,button,state,x,y", // a repeated header
		"0.3,10.3,Left,Pressed,130,100",
		"0.4,10.4,Left,Released,130,100",
	}, "\n")
	ev, st, err := ReadBalabit(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{DropNonMonotonic: 1, DropOffScreen: 1, DropUnknown: 1, DropMalformed: 2}
	for r, n := range want {
		if st.Dropped[r] != n {
			t.Errorf("dropped %q = %d, want %d (all: %v)", r, st.Dropped[r], n, st.Dropped)
		}
	}
	if st.Rows != 9 || st.Kept != 4 || len(ev) != 4 {
		t.Fatalf("rows %d kept %d events %d, want 9, 4, 4", st.Rows, st.Kept, len(ev))
	}
	if ev[0].T != 0 || ev[1].T != 100*time.Millisecond || ev[2].State != Pressed || ev[3].Button != Left {
		t.Errorf("events parsed wrongly: %+v", ev)
	}
}

func TestReadLabels(t *testing.T) {
	l, err := ReadLabels(strings.NewReader("filename,is_illegal\nsession_1,1\nsession_2,0\n"))
	if err != nil || len(l) != 2 || !l["session_1"] || l["session_2"] {
		t.Fatalf("labels %v, %v", l, err)
	}
	for _, bad := range []string{"filename,is_illegal\nsession_1,2\n", "session_1,1\nsession_1,0\n", "a,b,c\n"} {
		if _, err := ReadLabels(strings.NewReader(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// path makes a straight movement of n points from (x0, y0) every 10 ms, going dx, dy per step.
func path(start time.Duration, n int, x0, y0, dx, dy float64) []Event {
	ev := make([]Event, n)
	for i := range ev {
		ev[i] = Event{T: start + time.Duration(i)*10*time.Millisecond, State: Move, X: x0 + float64(i)*dx, Y: y0 + float64(i)*dy}
	}
	return ev
}

func TestSegment(t *testing.T) {
	var ev []Event
	ev = append(ev, path(0, 10, 0, 0, 5, 0)...)             // a move,
	ev = append(ev, path(3*time.Second, 10, 0, 0, 0, 5)...) // a pause, a pointing movement
	ev = append(ev, Event{T: 3100 * time.Millisecond, Button: Left, State: Pressed, X: 0, Y: 45},
		Event{T: 3200 * time.Millisecond, Button: Left, State: Released, X: 0, Y: 45}) // and its click,
	ev = append(ev, path(3300*time.Millisecond, 8, 0, 45, 5, 5)...) // a movement before a press,
	ev = append(ev, Event{T: 3400 * time.Millisecond, Button: Left, State: Pressed, X: 35, Y: 80})
	for i, p := range path(3410*time.Millisecond, 10, 35, 80, -5, 0) { // a drag,
		p.State = Drag
		ev = append(ev, p)
		_ = i
	}
	ev = append(ev, Event{T: 3600 * time.Millisecond, Button: Left, State: Released, X: -10, Y: 80},
		Event{T: 3700 * time.Millisecond, Button: Scroll, State: Down, X: -10, Y: 80},   // a scroll,
		Event{T: 3800 * time.Millisecond, Button: Left, State: Released, X: -10, Y: 80}) // a stray release
	ev = append(ev, path(3900*time.Millisecond, 3, 0, 0, 1, 1)...) // and a move too short to keep.
	actions, dropped, err := Segment(ev, SegmentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	want := []ActionType{MoveAction, PointClick, MoveAction, DragDrop}
	if len(actions) != len(want) || dropped != 1 {
		t.Fatalf("%d actions, %d dropped; want %d and 1", len(actions), dropped, len(want))
	}
	for i, a := range actions {
		if a.Type != want[i] {
			t.Errorf("action %d is a %s, want a %s", i, a.Type, want[i])
		}
	}
	if pc := actions[1]; pc.Press != 3100*time.Millisecond || pc.Release != 3200*time.Millisecond || len(pc.Points) != 12 {
		t.Errorf("click action: press %v release %v, %d points", pc.Press, pc.Release, len(pc.Points))
	}
	if dd := actions[3]; dd.Points[0].State != Pressed || dd.Points[len(dd.Points)-1].State != Released {
		t.Errorf("drag does not run from press to release: %+v", dd.Points)
	}
}

// TestFeaturesOfAStraightLine checks features against what a straight movement at constant
// speed must give.
func TestFeaturesOfAStraightLine(t *testing.T) {
	var ex Extractor
	f := make([]float64, NumFeatures)
	// 20 points, 3 px right and 4 px down every 10 ms: 500 px/s, 95 px end to end.
	a := Action{Type: MoveAction, Points: path(0, 20, 10, 10, 3, 4)}
	if err := ex.Extract(f, a); err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"duration", f[fDuration], math.Log(190)},
		{"path length", f[fPathLength], math.Log1p(95)},
		{"straightness", f[3], 1},
		{"mean speed", f[fMeanSpeed], math.Log1p(500)},
		{"top speed", f[fTopSpeed], math.Log1p(500)},
		{"mean acceleration", f[8], 0},
		{"turning", f[13], 0},
		{"largest deviation", f[17], 0},
		{"paused", f[19], 0},
		{"direction", f[fDirCos], 0.6},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !math.IsNaN(f[fClick]) || !math.IsNaN(f[fStopToPress]) {
		t.Error("a move has click features")
	}
	if s := Direction(f); s != 1 {
		t.Errorf("sector %d, want 1 (down-right)", s)
	}
	if n := testing.AllocsPerRun(50, func() { ex.Extract(f, a) }); n != 0 {
		t.Errorf("Extract allocates %v times", n)
	}
	same := Action{Points: []Event{{T: 0}, {T: 0, X: 1}, {T: 0, X: 2}}}
	if err := ex.Extract(f, same); !errors.Is(err, ErrActionTooShort) {
		t.Errorf("points at one time: %v", err)
	}
	var w models.Window
	Window(&w, PointClick, f)
	if err := NewLayout().Validate(); err != nil {
		t.Fatal(err)
	}
	if len(w.Dense) != NumDense || w.Dense[NumFeatures+int(PointClick)] != 1 {
		t.Errorf("window dense %v", w.Dense)
	}
}

func TestRealSessions(t *testing.T) {
	sessions, err := BalabitSessions(balabitDir, "training_files")
	if err != nil {
		t.Skipf("Balabit data not available at %s: %v", balabitDir, err)
	}
	ev, st, err := ReadBalabitFile(sessions[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	actions, _, err := Segment(ev, SegmentConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var ex Extractor
	f := make([]float64, NumFeatures)
	kept := 0
	for _, a := range actions {
		if ex.Extract(f, a) == nil {
			kept++
		}
	}
	if st.Kept < 1000 || kept < 100 {
		t.Fatalf("%s: %d events, %d actions with features", sessions[0].Path, st.Kept, kept)
	}
	t.Logf("%s: %d rows, %d kept, dropped %v, %d actions", filepath.Base(sessions[0].Path), st.Rows, st.Kept, st.Dropped, kept)
	if _, err := BalabitSessions(t.TempDir(), "training_files"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: %v", err)
	}
}

func FuzzReadBalabit(f *testing.F) {
	f.Add("record timestamp,client timestamp,button,state,x,y\n0.0,0.0,NoButton,Move,1,2\n0.1,0.1,Left,Pressed,1,2\n0.2,0.2,Left,Released,1,2\n")
	f.Add("0,5,NoButton,Drag,1,1\n0,4,NoButton,Drag,1,1\n0,NaN,Scroll,Up,1,1\n0,1e300,Left,Pressed,-1,5\n")
	f.Fuzz(func(t *testing.T, in string) {
		ev, st, err := ReadBalabit(strings.NewReader(in))
		if err != nil {
			return
		}
		if st.Kept != len(ev) || st.Kept > st.Rows {
			t.Fatalf("kept %d, events %d, rows %d", st.Kept, len(ev), st.Rows)
		}
		for i := 1; i < len(ev); i++ {
			if ev[i].T < ev[i-1].T {
				t.Fatalf("time goes backwards at %d", i)
			}
		}
		actions, _, err := Segment(ev, SegmentConfig{MinPoints: 2})
		if err != nil {
			t.Fatal(err)
		}
		var ex Extractor
		feat := make([]float64, NumFeatures)
		for _, a := range actions {
			if ex.Extract(feat, a) == nil {
				for i, v := range feat {
					if math.IsInf(v, 0) {
						t.Fatalf("feature %s is infinite", featureNames[i])
					}
				}
			}
		}
	})
}

func FuzzReadLabels(f *testing.F) {
	f.Add("filename,is_illegal\nsession_1,1\n")
	f.Add("session_1,0\n\nsession_2,1\n")
	f.Fuzz(func(t *testing.T, in string) {
		labels, err := ReadLabels(strings.NewReader(in))
		if err == nil && labels == nil {
			t.Fatal("nil labels without an error")
		}
	})
}
