package behaviour_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/mouse"
)

func meanAnomaly(t *testing.T, sc *behaviour.Scorer, windows [][]guard.KeystrokeEvent) float64 {
	t.Helper()
	var sum float64
	for _, w := range windows {
		s, err := sc.ScoreKeystrokes(w)
		if err != nil {
			t.Fatal(err)
		}
		sum += s.Anomaly
	}
	return sum / float64(len(windows))
}

func TestScorerTellsTheOwnerFromSomeoneElse(t *testing.T) {
	m, owner := enrolled(t, 1)
	sc, err := behaviour.NewScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	own := meanAnomaly(t, sc, windowsOf(guardEvents("s", owner.Type(500), t0)))
	other := meanAnomaly(t, sc, windowsOf(guardEvents("s", keystroke.NewTypist(2).Type(500), t0)))
	t.Logf("mean anomaly: owner %.3f, another typist %.3f", own, other)
	if !(own < 0.3 && other > 0.7) {
		t.Fatalf("mean anomaly of the owner %.3f, of another typist %.3f", own, other)
	}
}

func TestScorerExplainsInPlainWords(t *testing.T) {
	m, _ := enrolled(t, 1)
	sc, _ := behaviour.NewScorer(m)
	w := guardEvents("s", keystroke.NewTypist(3).Type(50), t0)
	s, err := sc.ScoreKeystrokes(w)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Deviations) == 0 || len(s.Deviations) > models.MaxDeviations {
		t.Fatalf("%d deviations for another typist's window (anomaly %.2f)", len(s.Deviations), s.Anomaly)
	}
	withUnit := 0
	for _, d := range s.Deviations {
		if d.Feature == "" || math.IsNaN(d.Z) || math.IsNaN(d.Value) || math.IsNaN(d.Baseline) {
			t.Errorf("deviation %+v", d)
		}
		if d.Unit == "ms" {
			withUnit++
		}
	}
	if withUnit == 0 {
		t.Errorf("no deviation in milliseconds: %+v", s.Deviations)
	}

	// Through a guard, the explanation quotes them with the owner's usual values.
	policy, _ := guard.ParsePolicy(strings.NewReader("docs.read 50\n"))
	src := behaviour.NewSource()
	if err := src.SetModel("alice", m); err != nil {
		t.Fatal(err)
	}
	g, err := guard.New(guard.Config{Scorers: src, Clock: func() time.Time { return t0.Add(time.Hour) }}, policy)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.OpenSession("s", "alice", t0); err != nil {
		t.Fatal(err)
	}
	var st guard.Status
	for _, ev := range guardEvents("s", keystroke.NewTypist(3).Type(50), t0.Add(time.Second)) {
		if st, err = g.ObserveKeystroke(ev); err != nil {
			t.Fatal(err)
		}
	}
	if st.Tier < guard.TierSoft || !strings.Contains(st.Reasons[0].Text, " ms, usually ") {
		t.Fatalf("after another typist's window: %v %v", st.Tier, st.Reasons)
	}
	t.Log(st.Reasons[0].Text)
}

func TestScorerGivesNoOpinionWithoutAModelOrTimings(t *testing.T) {
	sc, err := behaviour.NewScorer(nil)
	if err != nil {
		t.Fatal(err)
	}
	w := guardEvents("s", keystroke.NewTypist(1).Type(50), t0)
	if _, err := sc.ScoreKeystrokes(w); !errors.Is(err, guard.ErrNotScored) {
		t.Fatalf("without a model: %v", err)
	}
	m, _ := enrolled(t, 1)
	if err := sc.SetModel(m); err != nil {
		t.Fatal(err)
	}
	// Keystrokes a minute apart have no rhythm to judge.
	sparse := make([]guard.KeystrokeEvent, 50)
	for i := range sparse {
		p := t0.Add(time.Duration(i) * time.Minute)
		sparse[i] = guard.KeystrokeEvent{Session: "s", Press: p, Release: p, Key: 'A'}
	}
	if _, err := sc.ScoreKeystrokes(sparse); !errors.Is(err, guard.ErrNotScored) {
		t.Fatalf("a window of pauses: %v", err)
	}
	if _, err := sc.ScoreMouse(nil); !errors.Is(err, guard.ErrNotScored) {
		t.Fatalf("mouse: %v", err)
	}
	if _, err := sc.ScoreKeystrokes(nil); !errors.Is(err, guard.ErrNotScored) {
		t.Fatalf("empty window: %v", err)
	}
	if _, err := sc.ScoreKeystrokes(w); err != nil {
		t.Fatal(err)
	}
	if st := sc.Stats(); st.Unenrolled != 1 || st.Sparse != 1 || st.Scored != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestScorerAllocatesNothing(t *testing.T) {
	m, owner := enrolled(t, 1)
	sc, _ := behaviour.NewScorer(m)
	windows := windowsOf(guardEvents("s", owner.Type(2000), t0))
	for _, w := range windows { // every slot of the feedback ring grows once
		sc.ScoreKeystrokes(w)
	}
	i := 0
	allocs := testing.AllocsPerRun(200, func() {
		sc.ScoreKeystrokes(windows[i%len(windows)])
		i++
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per window", allocs)
	}
}

func TestSetModelRejectsOtherFeatures(t *testing.T) {
	l := mouse.NewLayout()
	var windows []models.Window
	for i := 0; i < 8; i++ {
		f := make([]float64, mouse.NumFeatures)
		for j := range f {
			f[j] = float64((i*7+j*3)%11) / 5
		}
		var w models.Window
		mouse.Window(&w, mouse.MoveAction, f)
		windows = append(windows, w)
	}
	m, err := models.FitUserModel(context.Background(), l, nil, models.Enrolment{Windows: windows}, models.UserModelConfig{Train: models.TrainConfig{Epochs: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := behaviour.NewScorer(m); !errors.Is(err, behaviour.ErrLayout) {
		t.Fatalf("a mouse model as a keystroke scorer: %v", err)
	}
	if _, err := behaviour.KeystrokeLayout(&models.Global{Population: &models.Population{Layout: l}}); !errors.Is(err, behaviour.ErrLayout) {
		t.Fatalf("a mouse population: %v", err)
	}
	if _, err := behaviour.FitKeystrokes(context.Background(), l, nil, models.Enrolment{Windows: windows}, models.UserModelConfig{}); !errors.Is(err, behaviour.ErrLayout) {
		t.Fatalf("fitting keystrokes on the mouse layout: %v", err)
	}
}
