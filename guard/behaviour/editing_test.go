package behaviour

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"math"
	"slices"
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
		name  string
		a     float64
		w     []guard.KeystrokeEvent
		share float64 // the user's share of corrections
		// shift is the expected change of the log-odds; NaN: a must come back unchanged.
		shift float64
	}{
		{"no corrections: more anomalous", 0.5, withCorrections(0, 0), editShare, 0.14 * 3.1},
		{"three backspaces: about typical", 0.8, withCorrections(3, keystroke.CodeBackspace), editShare, 0.14 * 0.1},
		{"a burst of backspaces: less anomalous", 0.9, withCorrections(10, keystroke.CodeBackspace), editShare, -0.14 * 6.9},
		{"arrow keys count", 0.9, withCorrections(10, 37), editShare, -0.14 * 6.9},
		{"delete counts", 0.9, withCorrections(10, codeDelete), editShare, -0.14 * 6.9},
		{"a longer burst: discounted to the bound", 0.9, withCorrections(15, keystroke.CodeBackspace), editShare, -0.14 * 8},
		{"all corrections: discounted to the bound", 0.99, withCorrections(50, keystroke.CodeBackspace), editShare, -0.14 * 8},
		{"shift does not count", 0.5, withCorrections(15, keystroke.CodeShift), editShare, 0.14 * 3.1},
		{"a heavy corrector's typical burst keeps its anomaly", 0.9, withCorrections(15, keystroke.CodeBackspace), 0.3, 0},
		{"a heavy corrector's burst is discounted less", 0.9, withCorrections(15, keystroke.CodeBackspace), 0.2, -0.14 * 5},
		{"a light corrector's three backspaces are discounted", 0.8, withCorrections(3, keystroke.CodeBackspace), 0.02, -0.14 * 2},
		{"certainly the owner stays so", 0, withCorrections(0, 0), editShare, math.NaN()},
		{"certainly someone else stays so", 1, withCorrections(50, keystroke.CodeBackspace), 0.02, math.NaN()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := editCalibrated(tt.a, tt.w, tt.share)
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

// otherTyping is typist 1's keystroke model and its Scorer, with typist 2's 50 keystrokes as
// the guard's events: someone else's window, for tests that put corrections into it.
type otherTyping struct {
	m     *models.UserModel
	sc    *Scorer
	other []guard.KeystrokeEvent
}

func newOtherTyping(t *testing.T) otherTyping {
	t.Helper()
	e, _, err := KeystrokeEnrolment(keystroke.NewTypist(1).Type(300), EnrolConfig{})
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
	ks := keystroke.NewTypist(2).Type(50)
	start := time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	other := make([]guard.KeystrokeEvent, len(ks))
	for i, k := range ks {
		p := start.Add(k.Press - ks[0].Press)
		other[i] = guard.KeystrokeEvent{Session: "s", Press: p, Release: p, Key: uint16(k.Code)}
		if h, ok := k.Hold(); ok {
			other[i].Release = p.Add(h)
		}
	}
	return otherTyping{m, sc, other}
}

// window returns a copy of the other typist's window with key(i, k) as its i-th key.
func (o otherTyping) window(key func(i int, k uint16) uint16) []guard.KeystrokeEvent {
	w := slices.Clone(o.other)
	for i := range w {
		w[i].Key = key(i, w[i].Key)
	}
	return w
}

// scores returns the model's anomaly of w and the scorer's.
func (o otherTyping) scores(t *testing.T, w []guard.KeystrokeEvent) (model, scorer float64) {
	t.Helper()
	var tm keystroke.Timings
	var ex keystroke.TimingExtractor
	if err := ex.Extract(&tm, AppendKeystrokes(nil, w)); err != nil {
		t.Fatal(err)
	}
	model, _ = o.m.Score(tm.Window())
	s, err := o.sc.ScoreKeystrokes(w)
	if errors.Is(err, guard.ErrNotScored) || err != nil {
		t.Fatal(err)
	}
	return model, s.Anomaly
}

// TestScorerDiscountsCorrections checks that the live path recalibrates: the same typing scores
// less anomalous with a burst of backspaces in it than the model alone says, and more without.
func TestScorerDiscountsCorrections(t *testing.T) {
	o := newOtherTyping(t)
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
			w := o.window(func(i int, k uint16) uint16 {
				switch {
				case i%4 == 1 && i/4 < tt.backspaces:
					return keystroke.CodeBackspace
				case isCorrection(k):
					return 'E' // the typist's own corrections
				}
				return k
			})
			raw, scored := o.scores(t, w)
			t.Logf("model %.4f, scorer %.4f", raw, scored)
			if raw <= 0 || raw >= 1 {
				t.Fatalf("the model's anomaly %v leaves nothing to recalibrate", raw)
			}
			if got := scored < raw; got != tt.lower {
				t.Fatalf("scorer %.4f, model %.4f: want the scorer's lower %v", scored, raw, tt.lower)
			}
		})
	}
}

func TestEditShareOf(t *testing.T) {
	if backspaceRate < 0 {
		t.Fatal("the keystroke summary has no backspace rate")
	}
	pop := editShare - editShareOther // the population's backspace rate
	tests := []struct {
		name    string
		rate    float64
		windows int
		want    float64
	}{
		{"no enrolment: the population's", 0, 0, editShare},
		{"the population's backspace rate: the population's share", pop, 5, editShare},
		{"a heavy corrector: above, shrunk half way", 0.2, 5, (editShare + 0.2 + editShareOther) / 2},
		{"no corrections: below, shrunk half way", 0, 5, editShareOther + pop/2},
		{"one window weighs less than five", 0.2, 1, editShareOther + (0.2+editPrior*pop)/(1+editPrior)},
		{"many windows weigh more", 0.2, 45, editShareOther + (9+editPrior*pop)/(45+editPrior)},
		{"a mean above 1 is corrupt: the population's", 2, 5, editShare},
		{"a negative mean is corrupt: the population's", -0.1, 5, editShare},
		{"NaN: the population's", math.NaN(), 5, editShare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := editShareOf(tt.rate, tt.windows)
			if math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("editShareOf(%v, %d) = %.6f, want %.6f", tt.rate, tt.windows, got, tt.want)
			}
			if got <= 0 || got >= 1 {
				t.Fatalf("editShareOf = %v, not a share", got)
			}
		})
	}
}

// TestScorerCentresOnEnrolment checks that a model carries its enrolment's share of
// corrections to its Scorer, through a Source as well, and that a refit from the enrolment as
// the device agent saves it (gob) and loads it after a restart gets the same share.
func TestScorerCentresOnEnrolment(t *testing.T) {
	ty := keystroke.NewTypist(3)
	ks := ty.Type(300)
	for i := range ks {
		if i%5 == 2 { // a heavy corrector: one keystroke in five a backspace
			ks[i].Code = keystroke.CodeBackspace
		}
	}
	e, _, err := KeystrokeEnrolment(ks, EnrolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var rate float64
	for _, w := range e.Windows {
		rate += w.Dense[backspaceRate] / float64(len(e.Windows))
	}
	want := editShareOf(rate, len(e.Windows))
	if want < 0.1 {
		t.Fatalf("the heavy corrector's share is %.4f, want it well above the population's %.3f", want, editShare)
	}
	fit := func(e models.Enrolment) *models.UserModel {
		m, err := FitKeystrokes(context.Background(), nil, nil, e, models.UserModelConfig{Train: models.TrainConfig{Seed: 1}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var saved bytes.Buffer
	if err := gob.NewEncoder(&saved).Encode(e); err != nil {
		t.Fatal(err)
	}
	var loaded models.Enrolment
	if err := gob.NewDecoder(&saved).Decode(&loaded); err != nil {
		t.Fatal(err)
	}
	plain, err := models.FitUserModel(context.Background(), keystroke.NewLayout(), nil, e, models.UserModelConfig{Train: models.TrainConfig{Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	src := NewSource()
	tests := []struct {
		name string
		sc   func() *Scorer
		want float64
	}{
		{"fitted", func() *Scorer {
			sc, err := NewScorer(fit(e))
			if err != nil {
				t.Fatal(err)
			}
			return sc
		}, want},
		{"through a source", func() *Scorer {
			if err := src.SetModel("u", fit(e)); err != nil {
				t.Fatal(err)
			}
			return src.Scorer("u")
		}, want},
		{"refitted after a restart", func() *Scorer {
			sc, err := NewScorer(fit(loaded))
			if err != nil {
				t.Fatal(err)
			}
			return sc
		}, want},
		{"fitted by models.FitUserModel", func() *Scorer {
			sc, err := NewScorer(plain)
			if err != nil {
				t.Fatal(err)
			}
			return sc
		}, want},
		{"the model removed: the population's", func() *Scorer {
			sc, err := NewScorer(fit(e))
			if err != nil {
				t.Fatal(err)
			}
			if err := sc.SetModel(nil); err != nil {
				t.Fatal(err)
			}
			return sc
		}, editShare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := tt.sc()
			sc.mu.Lock()
			got := sc.share
			sc.mu.Unlock()
			if math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("the scorer centres on %.6f, want %.6f", got, tt.want)
			}
		})
	}
}

// TestAttackBackspacesHideImpostor is an impostor who knows the corrections discount and
// presses backspace to lower the anomaly of their own typing: whatever the number of
// corrections, their windows must still look like someone else's (above 0.9), and the scorer may
// lower a window's log-odds by at most 1.2 below what the model gives the same window (a
// factor of 3.3 in the odds). Without maxEditExcess, 48 backspaces in 50 keystrokes took this
// impostor's window from the model's 0.995 to 0.245.
func TestAttackBackspacesHideImpostor(t *testing.T) {
	o := newOtherTyping(t)
	logit := func(a float64) float64 { return math.Log(a / (1 - a)) }
	const maxDrop = 1.2
	for _, backspaces := range []int{0, 10, 20, 30, 40, 48} {
		w := o.window(func(i int, k uint16) uint16 {
			if i > 0 && i <= backspaces { // the first key stays a letter: the window needs one
				return keystroke.CodeBackspace
			}
			return k
		})
		raw, scored := o.scores(t, w)
		t.Logf("%2d backspaces: model %.4f, scorer %.4f", backspaces, raw, scored)
		if backspaces == 0 && raw < 0.95 {
			t.Fatalf("the model scores the impostor's own typing %.4f: no attack to make", raw)
		}
		if scored <= 0.9 {
			t.Errorf("%d backspaces brought the impostor's window to %.4f, down from the model's %.4f", backspaces, scored, raw)
		}
		if drop := logit(raw) - logit(scored); drop > maxDrop {
			t.Errorf("%d backspaces lowered the impostor's log-odds by %.3f, more than %.1f", backspaces, drop, maxDrop)
		}
	}
}
