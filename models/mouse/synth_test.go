package mouse

import (
	"context"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/metrics"
)

func TestMoverDeterministic(t *testing.T) {
	a, b := NewMover(7), NewMover(7)
	for range 3 {
		if ea, eb := a.Move(50), b.Move(50); !reflect.DeepEqual(ea, eb) {
			t.Fatal("the same seed moved differently")
		}
	}
	if reflect.DeepEqual(NewMover(7).Move(20), NewMover(8).Move(20)) {
		t.Fatal("different seeds moved the same way")
	}
	wa, wb := NewMover(3).Windows(30), NewMover(3).Windows(30)
	for i := range wa {
		if !sameBits(wa[i].Dense, wb[i].Dense) || !reflect.DeepEqual(wa[i].Events, wb[i].Events) {
			t.Fatalf("the same seed gave different windows at %d", i)
		}
	}
}

// sameBits compares feature vectors, NaN (a feature an action lacks) equal to NaN.
func sameBits(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

// TestMoverEvents checks the events are in time order, sampled at a realistic interval, on the
// screen, and cut into actions of every type, nearly all of which have features.
func TestMoverEvents(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 42, 1000} {
		m := NewMover(seed)
		first := m.Move(100)
		evs := append(first, m.Move(200)...) // a second call continues the session
		var gaps []time.Duration
		for i, e := range evs {
			if e.X < 0 || e.X >= screenW || e.Y < 0 || e.Y >= screenH {
				t.Fatalf("seed %d: event %d off the screen: %+v", seed, i, e)
			}
			if i == 0 {
				continue
			}
			if e.T <= evs[i-1].T {
				t.Fatalf("seed %d: event %d at %v, not after %v", seed, i, e.T, evs[i-1].T)
			}
			if e.State == Move && evs[i-1].State == Move {
				gaps = append(gaps, e.T-evs[i-1].T)
			}
		}
		slices.Sort(gaps)
		if med := gaps[len(gaps)/2]; med < 7*time.Millisecond || med > 17*time.Millisecond {
			t.Errorf("seed %d: median sampling interval %v, want 8-16 ms", seed, med)
		}
		actions, dropped, err := Segment(evs, SegmentConfig{})
		if err != nil {
			t.Fatal(err)
		}
		var byType [NumActionTypes]int
		var ex Extractor
		f := make([]float64, NumFeatures)
		described := 0
		for _, a := range actions {
			byType[a.Type]++
			if ex.Extract(f, a) == nil {
				described++
			}
		}
		for ty, n := range byType {
			if n < 5 {
				t.Errorf("seed %d: %d actions of type %v in 300 (all: %v)", seed, n, ActionType(ty), byType)
			}
		}
		if len(actions) < 270 || described < len(actions)*95/100 {
			t.Errorf("seed %d: 300 actions segmented into %d (%d dropped), %d with features", seed, len(actions), dropped, described)
		}
		if got := len(m.Windows(40)); got != 40 {
			t.Errorf("seed %d: Windows(40) gave %d", seed, got)
		}
	}
}

// TestMoverVaries checks a user's actions are not copies of one another.
func TestMoverVaries(t *testing.T) {
	ws := NewMover(5).Windows(50)
	for f := 0; f < NumFeatures-2; f++ { // the click features: see below
		seen := map[float64]bool{}
		for _, w := range ws {
			if v := w.Dense[f]; !math.IsNaN(v) {
				seen[v] = true
			}
		}
		if len(seen) < 10 {
			t.Errorf("feature %q takes %d distinct values in 50 actions", featureNames[f], len(seen))
		}
	}
	clicks := map[float64]bool{}
	for _, w := range ws {
		if v := w.Dense[fClick]; !math.IsNaN(v) {
			clicks[v] = true
		}
	}
	if len(clicks) < 5 {
		t.Errorf("click durations take %d distinct values", len(clicks))
	}
}

// TestMoversDistinguishable fits user A's model on 100 actions, as the agent does, and scores
// A's later actions against user B's, one action at a time: the users differ, but single actions
// overlap, as real users' do.
func TestMoversDistinguishable(t *testing.T) {
	if testing.Short() {
		t.Skip("fits user models")
	}
	l := NewLayout()
	pairs := []struct{ a, b uint64 }{{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}}
	var sum float64
	var perfect int
	for _, p := range pairs {
		a := NewMover(p.a)
		m, err := models.FitUserModel(context.Background(), l, nil, models.Enrolment{Windows: a.Windows(100)}, models.UserModelConfig{Train: models.TrainConfig{Seed: p.a}})
		if err != nil {
			t.Fatal(err)
		}
		score := func(ws []models.Window) []float64 {
			s := make([]float64, len(ws))
			for i, w := range ws {
				s[i], _ = m.Score(w)
			}
			return s
		}
		auc, err := metrics.AUC(score(a.Windows(200)), score(NewMover(p.b).Windows(200)))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("user %d against user %d: AUC %.3f per action", p.a, p.b, auc)
		if auc < 0.6 {
			t.Errorf("user %d against user %d: AUC %.3f, want the users told apart", p.a, p.b, auc)
		}
		if auc > 0.999 {
			perfect++
		}
		sum += auc
	}
	mean := sum / float64(len(pairs))
	t.Logf("mean AUC %.3f over %d pairs", mean, len(pairs))
	if mean < 0.75 || perfect == len(pairs) {
		t.Errorf("mean AUC %.3f, %d of %d pairs perfect: want clearly above 0.5 but not trivially 1", mean, perfect, len(pairs))
	}
}

// BenchmarkMoverWindows measures making windows of synthetic actions, as the demo's simulated
// devices do.
func BenchmarkMoverWindows(b *testing.B) {
	m := NewMover(1)
	n := 0
	for b.Loop() {
		n += len(m.Windows(100))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "windows/s")
}
