package models

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

func testData(n, dim int, seed uint64) [][]float64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	// Rows on a low-dimensional manifold, so that an autoencoder with a narrow code can learn them.
	data := make([][]float64, n)
	for i := range data {
		a, b := rng.NormFloat64(), rng.NormFloat64()
		row := make([]float64, dim)
		for j := range row {
			row[j] = 0.5*math.Sin(float64(j)+a) + 0.3*b*float64(j%3) + 0.05*rng.NormFloat64()
		}
		data[i] = row
	}
	return data
}

func TestSpecValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		ok   bool
	}{
		{"good", Spec{Layers: []int{8, 4, 8}, Activation: Tanh}, true},
		{"relu", Spec{Layers: []int{8, 6, 3, 6, 8}, Activation: ReLU}, true},
		{"too few layers", Spec{Layers: []int{8, 8}, Activation: Tanh}, false},
		{"output differs", Spec{Layers: []int{8, 4, 7}, Activation: Tanh}, false},
		{"zero width", Spec{Layers: []int{8, 0, 8}, Activation: Tanh}, false},
		{"huge width", Spec{Layers: []int{8, MaxLayerWidth + 1, 8}, Activation: Tanh}, false},
		{"unknown activation", Spec{Layers: []int{8, 4, 8}, Activation: "sigmoid"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error %v does not wrap ErrBadSpec", err)
			}
		})
	}
}

func TestNumParamsMatchesLayout(t *testing.T) {
	spec := Spec{Layers: []int{5, 3, 2, 3, 5}, Activation: Tanh}
	// (5*3+3) + (3*2+2) + (2*3+3) + (3*5+5) = 18 + 8 + 9 + 20
	if got := spec.NumParams(); got != 55 {
		t.Fatalf("NumParams = %d, want 55", got)
	}
	params := make([]float64, spec.NumParams())
	for i := range params {
		params[i] = float64(i)
	}
	ls := spec.layers(params)
	if ls[1].w[0] != 18 || ls[1].b[0] != 24 || ls[3].b[4] != 54 {
		t.Fatalf("layer views do not follow the documented order: %v %v %v", ls[1].w[0], ls[1].b[0], ls[3].b[4])
	}
}

// TestScorerMatchesGraph checks that the live scoring path computes exactly what the Gorgonia
// graph computes, for both activations, untrained and trained parameters.
func TestScorerMatchesGraph(t *testing.T) {
	for _, act := range []Activation{Tanh, ReLU} {
		spec := Spec{Layers: []int{12, 8, 3, 8, 12}, Activation: act}
		data := testData(64, 12, 7)
		init, err := spec.InitParams(3)
		if err != nil {
			t.Fatal(err)
		}
		trained, err := Train(context.Background(), spec, init, data, TrainConfig{Epochs: 5, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		for name, params := range map[string][]float64{"init": init, "trained": trained.Params} {
			want, err := GraphErrors(spec, params, data)
			if err != nil {
				t.Fatal(err)
			}
			s, err := NewScorer(spec, params)
			if err != nil {
				t.Fatal(err)
			}
			for i, row := range data {
				if got := s.Score(row); math.Abs(got-want[i]) > 1e-9 {
					t.Fatalf("%s/%s row %d: scorer %v, graph %v", act, name, i, got, want[i])
				}
			}
		}
	}
}

func TestTrainReducesLossAndIsDeterministic(t *testing.T) {
	spec := Spec{Layers: []int{12, 8, 3, 8, 12}, Activation: Tanh}
	data := testData(200, 12, 11)
	init, _ := spec.InitParams(5)
	cfg := TrainConfig{Epochs: 30, BatchSize: 16, LearningRate: 5e-3, Seed: 9}
	a, err := Train(context.Background(), spec, init, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first, last := a.EpochLoss[0], a.EpochLoss[len(a.EpochLoss)-1]; !(last < 0.5*first) {
		t.Fatalf("loss did not fall: first epoch %v, last %v", first, last)
	}
	b, err := Train(context.Background(), spec, init, data, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Params {
		if a.Params[i] != b.Params[i] {
			t.Fatalf("training is not deterministic: parameter %d differs (%v vs %v)", i, a.Params[i], b.Params[i])
		}
	}
	if init[0] == a.Params[0] && init[1] == a.Params[1] {
		t.Fatal("training did not change the parameters")
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	spec := Spec{Layers: []int{4, 2, 4}, Activation: Tanh}
	good, _ := spec.InitParams(1)
	row := []float64{1, 2, 3, 4}
	for _, tc := range []struct {
		name   string
		params []float64
		data   [][]float64
		cfg    TrainConfig
		want   error
	}{
		{"no data", good, nil, TrainConfig{}, ErrBadData},
		{"short row", good, [][]float64{{1, 2}}, TrainConfig{}, ErrBadData},
		{"NaN feature", good, [][]float64{{1, math.NaN(), 3, 4}}, TrainConfig{}, ErrBadData},
		{"wrong param count", good[:3], [][]float64{row}, TrainConfig{}, ErrBadSpec},
		{"Inf param", append([]float64{math.Inf(1)}, good[1:]...), [][]float64{row}, TrainConfig{}, ErrBadSpec},
		{"negative epochs", good, [][]float64{row}, TrainConfig{Epochs: -1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Train(context.Background(), spec, tc.params, tc.data, tc.cfg)
			if err == nil {
				t.Fatal("Train accepted bad input")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v does not wrap %v", err, tc.want)
			}
		})
	}
}

func TestScorerAllocatesNothing(t *testing.T) {
	spec := Spec{Layers: []int{24, 16, 6, 16, 24}, Activation: Tanh}
	params, _ := spec.InitParams(1)
	s, _ := NewScorer(spec, params)
	x := testData(1, 24, 2)[0]
	if n := testing.AllocsPerRun(100, func() { s.Score(x) }); n != 0 {
		t.Fatalf("Score allocates %v times per call", n)
	}
}
