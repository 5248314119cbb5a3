package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"
)

// TestHandComputed checks EER and AUC against values worked out by hand.
func TestHandComputed(t *testing.T) {
	for _, tc := range []struct {
		name          string
		genuine, imp  []float64
		eer, auc, thr float64
	}{
		// Sorted: .1g .2g .3g .35i .4g .5i .6i .7i. Accepting up to .35 gives FAR 1/4 and FRR 1/4.
		// AUC: .35 beats three genuine scores, the other impostors all four: 15/16.
		{"crossing at a point", []float64{0.1, 0.2, 0.3, 0.4}, []float64{0.35, 0.5, 0.6, 0.7}, 0.25, 15.0 / 16, 0.35},
		// Operating points (0, 1/3) at 1 and (1/2, 1/3) at 1.5: FAR = FRR = 1/3 two thirds of the
		// way along. AUC: 1.5 beats 0 and 1, 3 beats all three: 5/6.
		{"interpolated", []float64{0, 1, 2}, []float64{1.5, 3}, 1.0 / 3, 5.0 / 6, 1 + 2.0/3*0.5},
		{"separated", []float64{1, 2}, []float64{3, 4}, 0, 1, 2},
		{"inverted", []float64{3, 4}, []float64{1, 2}, 1, 0, 3},
		// All tied: a threshold accepts all or nothing.
		{"ties", []float64{1, 1}, []float64{1, 1}, 0.5, 0.5, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ROC(tc.genuine, tc.imp)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.EER(); math.Abs(got-tc.eer) > 1e-12 {
				t.Errorf("EER = %v, want %v", got, tc.eer)
			}
			if got := c.AUC(); math.Abs(got-tc.auc) > 1e-12 {
				t.Errorf("AUC = %v, want %v", got, tc.auc)
			}
			if tc.name == "crossing at a point" || tc.name == "interpolated" || tc.name == "separated" {
				if got := c.EERThreshold(); math.Abs(got-tc.thr) > 1e-12 {
					t.Errorf("EER threshold = %v, want %v", got, tc.thr)
				}
			}
		})
	}
}

// TestAUCIsMannWhitney compares the area under the curve with the Mann-Whitney statistic
// counted pair by pair, on scores with many ties.
func TestAUCIsMannWhitney(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		gen := make([]float64, 1+rng.IntN(40))
		imp := make([]float64, 1+rng.IntN(40))
		for i := range gen {
			gen[i] = float64(rng.IntN(10))
		}
		for i := range imp {
			imp[i] = float64(rng.IntN(10) + 2)
		}
		var u float64
		for _, g := range gen {
			for _, s := range imp {
				switch {
				case s > g:
					u++
				case s == g:
					u += 0.5
				}
			}
		}
		want := u / float64(len(gen)*len(imp))
		got, err := AUC(gen, imp)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > 1e-12 {
			t.Fatalf("trial %d: AUC %v, Mann-Whitney %v", trial, got, want)
		}
		e, _ := EER(gen, imp)
		if e < 0 || e > 1 {
			t.Fatalf("EER %v out of [0, 1]", e)
		}
	}
}

func TestRejectsBadTrials(t *testing.T) {
	if _, err := ROC(nil, []float64{1}); !errors.Is(err, ErrNoTrials) {
		t.Errorf("no genuine trials: %v", err)
	}
	if _, err := ROC([]float64{1}, nil); !errors.Is(err, ErrNoTrials) {
		t.Errorf("no impostor trials: %v", err)
	}
	if _, err := ROC([]float64{math.NaN()}, []float64{1}); err == nil {
		t.Error("NaN score accepted")
	}
}

func TestPlotsArePNGs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	gen, imp := make([]float64, 5000), make([]float64, 5000)
	for i := range gen {
		gen[i], imp[i] = rng.NormFloat64(), 2+rng.NormFloat64()
	}
	c, err := ROC(gen, imp)
	if err != nil {
		t.Fatal(err)
	}
	for name, write := range map[string]func(*bytes.Buffer) error{
		"roc": func(b *bytes.Buffer) error { return WriteROC(b, "test", Series{"a", c}, Series{"b", c}) },
		"det": func(b *bytes.Buffer) error { return WriteDET(b, "test", Series{"a", c}) },
	} {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		img, err := png.Decode(&buf)
		if err != nil {
			t.Fatalf("%s: not a PNG: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 300 {
			t.Fatalf("%s: image %v too small", name, b)
		}
	}
}

func ExampleEER() {
	genuine := []float64{0.1, 0.2, 0.3, 0.4}
	impostor := []float64{0.35, 0.5, 0.6, 0.7}
	eer, _ := EER(genuine, impostor)
	auc, _ := AUC(genuine, impostor)
	fmt.Printf("EER %.2f, AUC %.4f\n", eer, auc)
	// Output: EER 0.25, AUC 0.9375
}

func TestWriteTradeoff(t *testing.T) {
	s := TradeoffSeries{Name: "EER", Points: []TradeoffPoint{{1, 0.2, 0.18, 0.22}, {8, 0.05, 0.04, 0.06}, {math.Inf(1), 0.04, 0.035, 0.045}}}
	var buf bytes.Buffer
	if err := WriteTradeoff(&buf, "t", "EER", s); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("\x89PNG")) {
		t.Fatal("not a PNG")
	}
	bad := TradeoffSeries{Name: "bad", Points: []TradeoffPoint{{0, 0.1, 0.1, 0.1}}}
	if err := WriteTradeoff(&buf, "t", "EER", bad); err == nil {
		t.Error("epsilon 0 accepted")
	}
}
