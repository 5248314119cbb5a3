package keystroke

import (
	"context"
	"testing"

	"github.com/vigilauth/vigil/models"
)

// syntheticEnrolment types n windows of size l for the typist with seed.
func syntheticWindows(t testing.TB, seed uint64, n, l int) []models.Window {
	t.Helper()
	ty := NewTypist(seed)
	var ex TimingExtractor
	var out []models.Window
	for len(out) < n {
		var tm Timings
		if err := ex.Extract(&tm, ty.Type(l)); err != nil {
			t.Fatal(err)
		}
		out = append(out, models.Window{Dense: append([]float64(nil), tm.Summary...), Events: append([]Event(nil), tm.Events...)})
	}
	return out
}

// syntheticGlobal builds a population model from the enrolment of synthetic typists 100..100+n.
func syntheticGlobal(t testing.TB, l *models.Layout, n int) *models.Global {
	t.Helper()
	sum := make([]float64, models.ContributionLen(l))
	for i := 0; i < n; i++ {
		c, err := models.Contribution(l, syntheticWindows(t, uint64(100+i), 5, 50))
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range c {
			sum[j] += v
		}
	}
	pop, err := models.NewPopulation(l, sum, models.PopulationConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &models.Global{Population: pop}
}

func fitSynthetic(t testing.TB, g *models.Global, seed uint64) (*models.UserModel, *models.Layout) {
	t.Helper()
	l := NewLayout()
	if g == nil {
		g = syntheticGlobal(t, l, 30)
	}
	m, err := models.FitUserModel(context.Background(), l, g, models.Enrolment{Windows: syntheticWindows(t, seed, 5, 50)}, models.UserModelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return m, l
}

// BenchmarkLiveWindow measures the live path for one window of 50 keystrokes: timing and
// summary extraction, then the user model's full score (profile against the population,
// normalisation, autoencoder, isolation forest, combination, calibration and explanation).
func BenchmarkLiveWindow(b *testing.B) {
	m, _ := fitSynthetic(b, nil, 1)
	window := NewTypist(1).Type(50)
	var ex TimingExtractor
	var tm Timings
	b.ReportAllocs()
	for b.Loop() {
		if err := ex.Extract(&tm, window); err != nil {
			b.Fatal(err)
		}
		m.Score(tm.Window())
	}
}

// BenchmarkFitUserModel measures learning one user's model from enrolment as the evaluation
// does: G = 5 windows of 50 keystrokes for the profile and its cross-validated threshold, and
// 21 overlapping window summaries (stride 10) for the autoencoder (60 epochs, from the global
// initialisation) and the isolation forest. Run with -cpu 1 for the one-core figure.
func BenchmarkFitUserModel(b *testing.B) {
	l := NewLayout()
	g := syntheticGlobal(b, l, 30)
	spec, err := models.AutoencoderSpec(l, models.UserModelConfig{})
	if err != nil {
		b.Fatal(err)
	}
	if g.Params, err = spec.InitParams(1); err != nil {
		b.Fatal(err)
	}
	g.Spec = spec
	ks := NewTypist(1).Type(250)
	var ex TimingExtractor
	var enrol models.Enrolment
	for _, w := range Windows(ks, 50) {
		var tm Timings
		if err := ex.Extract(&tm, w); err != nil {
			b.Fatal(err)
		}
		enrol.Windows = append(enrol.Windows, models.Window{Dense: append([]float64(nil), tm.Summary...), Events: append([]Event(nil), tm.Events...)})
	}
	for start := 0; start+50 <= len(ks); start += 10 {
		var tm Timings
		if err := ex.Extract(&tm, ks[start:start+50]); err != nil {
			b.Fatal(err)
		}
		enrol.Summaries = append(enrol.Summaries, append([]float64(nil), tm.Summary...))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := models.FitUserModel(context.Background(), l, g, enrol, models.UserModelConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveWindowAalto is BenchmarkLiveWindow on real typing: a model enrolled on a
// participant of the Aalto data, with the population of 50 participants, scoring that
// participant's other windows in turn.
func BenchmarkLiveWindowAalto(b *testing.B) {
	files, err := AaltoFiles(aaltoDir)
	if err != nil || len(files) < 51 {
		b.Skipf("Aalto keystroke data not available at %s", aaltoDir)
	}
	l := NewLayout()
	var ex TimingExtractor
	windowsOf := func(path string) ([]models.Window, [][]Keystroke) {
		p, _, err := ReadAaltoFile(path)
		if err != nil {
			b.Fatal(err)
		}
		var ws []models.Window
		var raw [][]Keystroke
		for _, w := range Windows(p.Keystrokes(), 50) {
			var tm Timings
			if ex.Extract(&tm, w) == nil {
				ws = append(ws, models.Window{Dense: append([]float64(nil), tm.Summary...), Events: append([]Event(nil), tm.Events...)})
				raw = append(raw, w)
			}
		}
		return ws, raw
	}
	sum := make([]float64, models.ContributionLen(l))
	for _, f := range files[1:51] {
		ws, _ := windowsOf(f)
		c, err := models.Contribution(l, ws[:min(5, len(ws))])
		if err != nil {
			b.Fatal(err)
		}
		for i, v := range c {
			sum[i] += v
		}
	}
	pop, err := models.NewPopulation(l, sum, models.PopulationConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ws, raw := windowsOf(files[0])
	m, err := models.FitUserModel(context.Background(), l, &models.Global{Population: pop}, models.Enrolment{Windows: ws[:5]}, models.UserModelConfig{})
	if err != nil {
		b.Fatal(err)
	}
	test := raw[5:]
	var tm Timings
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := ex.Extract(&tm, test[i%len(test)]); err != nil {
			b.Fatal(err)
		}
		m.Score(tm.Window())
		i++
	}
}
