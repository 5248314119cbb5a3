package behaviour

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// withCorrections returns a window of 50 letter keystrokes of which the first n are corrections.
func withCorrections(n int, key uint16) []guard.KeystrokeEvent {
	w := make([]guard.KeystrokeEvent, 50)
	for i := range w {
		w[i].Key = 'E'
		if i < n {
			w[i].Key = key
		}
	}
	return w
}

func TestEditCalibrated(t *testing.T) {
	logit := func(a float64) float64 { return math.Log(a / (1 - a)) }
	tests := []struct {
		name string
		a    float64
		w    []guard.KeystrokeEvent
		// shift is the expected change of the log-odds; NaN: a must come back unchanged.
		shift float64
	}{
		{"no corrections: more anomalous", 0.5, withCorrections(0, 0), 0.14 * 3.1},
		{"three backspaces: about typical", 0.8, withCorrections(3, keystroke.CodeBackspace), 0.14 * 0.1},
		{"a burst of backspaces: less anomalous", 0.9, withCorrections(15, keystroke.CodeBackspace), -0.14 * 11.9},
		{"arrow keys count", 0.9, withCorrections(15, 37), -0.14 * 11.9},
		{"delete counts", 0.9, withCorrections(15, codeDelete), -0.14 * 11.9},
		{"shift does not count", 0.5, withCorrections(15, keystroke.CodeShift), 0.14 * 3.1},
		{"certainly the owner stays so", 0, withCorrections(0, 0), math.NaN()},
		{"certainly someone else stays so", 1, withCorrections(50, keystroke.CodeBackspace), math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := editCalibrated(tt.a, tt.w)
			if math.IsNaN(tt.shift) {
				if got != tt.a {
					t.Fatalf("editCalibrated(%v) = %v, want it unchanged", tt.a, got)
				}
				return
			}
			if d := logit(got) - logit(tt.a); math.Abs(d-tt.shift) > 1e-9 {
				t.Fatalf("editCalibrated(%v) = %v: log-odds moved %.4f, want %.4f", tt.a, got, d, tt.shift)
			}
		})
	}
}

// TestScorerDiscountsCorrections checks that the live path recalibrates: the same typing scores
// less anomalous with a burst of backspaces in it than the model alone says, and more without.
func TestScorerDiscountsCorrections(t *testing.T) {
	ty := keystroke.NewTypist(1)
	e, _, err := KeystrokeEnrolment(ty.Type(300), EnrolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := FitKeystrokes(context.Background(), nil, nil, e, models.UserModelConfig{Train: models.TrainConfig{Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := NewScorer(m)
	if err != nil {
		t.Fatal(err)
	}
	other := keystroke.NewTypist(2).Type(50)
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	window := func(backspaces int) []guard.KeystrokeEvent {
		w := make([]guard.KeystrokeEvent, len(other))
		for i, k := range other {
			p := start.Add(k.Press - other[0].Press)
			w[i] = guard.KeystrokeEvent{Session: "s", Press: p, Release: p, Key: uint16(k.Code)}
			if h, ok := k.Hold(); ok {
				w[i].Release = p.Add(h)
			}
			switch {
			case i%4 == 1 && i/4 < backspaces:
				w[i].Key = keystroke.CodeBackspace
			case isCorrection(w[i].Key):
				w[i].Key = 'E' // the typist's own corrections
			}
		}
		return w
	}
	tests := []struct {
		name       string
		backspaces int
		lower      bool // the scorer's anomaly below the model's
	}{
		{"a burst of corrections", 12, true},
		{"no corrections", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := window(tt.backspaces)
			var tm keystroke.Timings
			var ex keystroke.TimingExtractor
			if err := ex.Extract(&tm, AppendKeystrokes(nil, w)); err != nil {
				t.Fatal(err)
			}
			raw, _ := m.Score(tm.Window())
			s, err := sc.ScoreKeystrokes(w)
			if errors.Is(err, guard.ErrNotScored) || err != nil {
				t.Fatal(err)
			}
			t.Logf("model %.4f, scorer %.4f", raw, s.Anomaly)
			if raw <= 0 || raw >= 1 {
				t.Fatalf("the model's anomaly %v leaves nothing to recalibrate", raw)
			}
			if got := s.Anomaly < raw; got != tt.lower {
				t.Fatalf("scorer %.4f, model %.4f: want the scorer's lower %v", s.Anomaly, raw, tt.lower)
			}
		})
	}
}
