package eval

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/vigilauth/vigil/models/metrics"
)

// TestWeightedEERMatchesROC checks the resampling shortcut against metrics.EER: with every
// user weighing 1 it is the same EER, and with a user weighing 2 it is the EER of the trials
// with that user's repeated.
func TestWeightedEERMatchesROC(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	var all []scoredTrial
	var gen, imp []float64
	var gen2, imp2 []float64
	for u := 0; u < 20; u++ {
		for i := 0; i < 30; i++ {
			impostor := i%3 == 0
			s := rng.NormFloat64() + float64(u%4)/4
			if impostor {
				s += 1.5
			}
			s = math.Round(s*20) / 20 // ties, which both must treat alike
			all = append(all, scoredTrial{s, int32(u), impostor})
			reps := 1
			if u == 7 {
				reps = 2
			}
			for r := 0; r < reps; r++ {
				if impostor {
					imp2 = append(imp2, s)
				} else {
					gen2 = append(gen2, s)
				}
			}
			if impostor {
				imp = append(imp, s)
			} else {
				gen = append(gen, s)
			}
		}
	}
	sortTrials(all)
	weight := make([]float64, 20)
	for i := range weight {
		weight[i] = 1
	}
	for _, tc := range []struct {
		name     string
		gen, imp []float64
		double   bool
	}{{"unit weights", gen, imp, false}, {"user 7 twice", gen2, imp2, true}} {
		if tc.double {
			weight[7] = 2
		}
		want, err := metrics.EER(tc.gen, tc.imp)
		if err != nil {
			t.Fatal(err)
		}
		if got := weightedEER(all, weight); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: weighted EER %v, metrics.EER %v", tc.name, got, want)
		}
	}
}
