package models

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func TestNormaliser(t *testing.T) {
	nan := math.NaN()
	rows := [][]float64{{1, 1, nan}, {2, 2, nan}, {3, 4, nan}, {4, 100, nan}, {5, 3, nan}}
	z, err := FitNormaliser(ZScore, rows, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Column 0: mean 3, sample standard deviation sqrt(2.5). Column 2 has no values: centre 0,
	// unit scale.
	if z.Center[0] != 3 || math.Abs(z.Scale[0]-math.Sqrt(2.5)) > 1e-12 || z.Center[2] != 0 || z.Scale[2] != 1 {
		t.Errorf("z-score: centre %v scale %v", z.Center, z.Scale)
	}
	r, err := FitNormaliser(Robust, rows, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Column 1 sorted 1 2 3 4 100: median 3, quartiles 2 and 4, so the outlier does not matter.
	if r.Center[1] != 3 || math.Abs(r.Scale[1]-2/1.349) > 1e-12 {
		t.Errorf("robust: centre %v scale %v", r.Center[1], r.Scale[1])
	}
	// A prior scale of 4 worth 5 rows against 5 rows of spread sqrt(2.5).
	p, err := FitNormaliser(ZScore, rows, []float64{4, 4, 4}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if want := math.Sqrt((5*2.5 + 5*16) / 10.0); math.Abs(p.Scale[0]-want) > 1e-12 || p.Scale[2] != 4 {
		t.Errorf("prior: scale %v, want %v and 4", p.Scale, want)
	}
	dst := make([]float64, 3)
	z.Apply(dst, []float64{3 + math.Sqrt(2.5), nan, 7})
	if math.Abs(dst[0]-1) > 1e-12 || dst[1] != 0 || dst[2] != 7 {
		t.Errorf("Apply = %v, want [1 0 7]", dst)
	}
	for name, bad := range map[string][][]float64{"none": nil, "ragged": {{1, 2}, {1}}, "infinite": {{math.Inf(1)}}} {
		if _, err := FitNormaliser(ZScore, bad, nil, 0); !errors.Is(err, ErrBadData) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := FitNormaliser("minmax", rows, nil, 0); err == nil {
		t.Error("unknown scaling accepted")
	}
}

func TestIsolationForest(t *testing.T) {
	// c(256) from Liu, Ting and Zhou (2008): 2 H(255) - 2 * 255 / 256, about 10.24.
	if got := avgPathLength(256); math.Abs(got-10.2448) > 1e-3 {
		t.Errorf("c(256) = %v, want about 10.2448", got)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	rows := make([][]float64, 300)
	for i := range rows {
		rows[i] = []float64{rng.NormFloat64(), rng.NormFloat64(), rng.NormFloat64()}
	}
	f, err := FitIsolationForest(rows, ForestConfig{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	inlier, outlier := f.Score([]float64{0, 0, 0}), f.Score([]float64{6, -6, 6})
	if !(inlier < 0.5 && outlier > 0.65) {
		t.Errorf("inlier scores %v, outlier %v", inlier, outlier)
	}
	g, _ := FitIsolationForest(rows, ForestConfig{Seed: 1})
	if g.Score([]float64{1, 2, 3}) != f.Score([]float64{1, 2, 3}) {
		t.Error("forest is not deterministic given its seed")
	}
	x := []float64{1, 2, 3}
	if n := testing.AllocsPerRun(100, func() { f.Score(x) }); n != 0 {
		t.Errorf("Score allocates %v times", n)
	}
	if _, err := FitIsolationForest([][]float64{{1}}, ForestConfig{}); !errors.Is(err, ErrBadData) {
		t.Errorf("one row: %v", err)
	}
	if _, err := FitIsolationForest([][]float64{{1}, {math.NaN()}}, ForestConfig{}); !errors.Is(err, ErrBadData) {
		t.Errorf("NaN row: %v", err)
	}
}

func fitTestUser(t testing.TB, federated bool) (*UserModel, *Global, []Window) {
	t.Helper()
	l := testLayout()
	rng := rand.New(rand.NewPCG(9, 9))
	var g *Global
	if federated {
		g = &Global{Population: testPopulation(t, l, 40, 3)}
		spec, err := AutoencoderSpec(l, UserModelConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if g.Params, err = spec.InitParams(4); err != nil {
			t.Fatal(err)
		}
		g.Spec = spec
	}
	enrol := testWindows(rng, 8, 1)
	m, err := FitUserModel(context.Background(), l, g, Enrolment{Windows: enrol}, UserModelConfig{Train: TrainConfig{Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return m, g, testWindows(rng, 10, 1)
}

func TestUserModelScores(t *testing.T) {
	for _, federated := range []bool{true, false} {
		m, _, genuine := fitTestUser(t, federated)
		impostor := testWindows(rand.New(rand.NewPCG(10, 10)), 10, -1.5)
		var g, i float64
		for k := range genuine {
			ag, _ := m.Score(genuine[k])
			ai, devs := m.Score(impostor[k])
			for _, a := range []float64{ag, ai} {
				if !(a >= 0 && a <= 1) {
					t.Fatalf("anomaly %v outside [0, 1]", a)
				}
			}
			g, i = g+ag, i+ai
			if len(devs) == 0 {
				t.Fatal("an impostor window came without any deviation")
			}
			var share float64
			for j, d := range devs {
				share += d.Share
				if j > 0 && d.Share > devs[j-1].Share+1e-12 {
					t.Errorf("deviations not strongest first: %v", devs)
				}
				if d.Feature == "" || d.String() == "" {
					t.Errorf("deviation without words: %+v", d)
				}
			}
			if share > 1+1e-9 {
				t.Errorf("deviation shares add up to %v", share)
			}
		}
		if !(i > g) {
			t.Errorf("federated=%v: mean anomaly of impostors %v, of the user %v", federated, i/10, g/10)
		}
	}
}

func TestUserModelScoreAllocatesNothing(t *testing.T) {
	m, _, ws := fitTestUser(t, true)
	w := ws[0]
	if n := testing.AllocsPerRun(100, func() { m.Score(w) }); n != 0 {
		t.Fatalf("Score allocates %v times per window", n)
	}
}

// TestUserModelAutoencoderMatchesGraph checks that the autoencoder the user model scores on the
// live path computes what the Gorgonia graph computes on the same normalised rows.
func TestUserModelAutoencoderMatchesGraph(t *testing.T) {
	for _, federated := range []bool{true, false} {
		m, _, ws := fitTestUser(t, federated)
		rows := make([][]float64, len(ws))
		for i, w := range ws {
			rows[i] = make([]float64, len(w.Dense))
			m.norm.Apply(rows[i], w.Dense)
		}
		want, err := GraphErrors(m.ae.spec, m.ae.params, rows)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range ws {
			got := m.Detail(w).Autoencoder
			if exp := math.Log(want[i]+aeFloor) - m.aeCenter; math.Abs(got-exp) > 1e-9 {
				t.Fatalf("federated=%v window %d: live %v, graph %v", federated, i, got, exp)
			}
		}
	}
}

func TestUserModelFeedback(t *testing.T) {
	m, _, _ := fitTestUser(t, true)
	drift := testWindows(rand.New(rand.NewPCG(11, 11)), 40, 0)
	before := m.Detail(drift[0]).Profile
	for _, w := range drift[1:] {
		if err := m.Feedback(w, true); err != nil {
			t.Fatal(err)
		}
	}
	if after := m.Detail(drift[0]).Profile; !(after < before) {
		t.Errorf("after genuine feedback the drifted window scores %v, before %v", after, before)
	}
	still := m.Detail(drift[0]).Profile
	if err := m.Feedback(testWindows(rand.New(rand.NewPCG(12, 12)), 1, 3)[0], false); err != nil {
		t.Fatal(err)
	}
	if m.Detail(drift[0]).Profile != still {
		t.Error("an impostor's window changed the baseline")
	}
	if err := m.Feedback(Window{Dense: []float64{1}}, true); !errors.Is(err, ErrBadData) {
		t.Errorf("malformed window: %v", err)
	}
}

func TestUserModelRejectsMismatchedGlobal(t *testing.T) {
	l := testLayout()
	g := &Global{Population: testPopulation(t, l, 10, 1), Spec: Spec{Layers: []int{2, 3, 2}, Activation: Tanh}}
	g.Params, _ = g.Spec.InitParams(1)
	enrol := Enrolment{Windows: testWindows(rand.New(rand.NewPCG(1, 1)), 3, 0)}
	if _, err := FitUserModel(context.Background(), l, g, enrol, UserModelConfig{}); !errors.Is(err, ErrBadSpec) {
		t.Errorf("global autoencoder of another shape: %v", err)
	}
	if _, err := FitUserModel(context.Background(), l, nil, enrol, UserModelConfig{Scaling: "minmax"}); err == nil {
		t.Error("unknown scaling accepted")
	}
}
