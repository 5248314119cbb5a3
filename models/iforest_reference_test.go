package models

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestForestMatchesReference holds IsolationForest.Score, over its stored nodes and over the
// complete layout, to the trees as grown, walked node by node (referenceForestScore), bit for
// bit: forests of a few rows (shallow, uneven trees, as a user's enrolment gives), of the rows
// whose trees take the complete layout (4 to 6 levels) and of many, a constant feature, and
// rows inside, at the edges of and far outside the data, with NaN.
func TestForestMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	for _, n := range []int{2, 3, 5, 9, 16, 21, 33, 64, 65, 300} {
		rows := make([][]float64, n)
		for i := range rows {
			rows[i] = []float64{rng.NormFloat64(), 3 * rng.NormFloat64(), 1, rng.ExpFloat64()}
		}
		cfg := ForestConfig{Seed: uint64(n)}
		f, err := FitIsolationForest(rows, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.validate(n); err != nil {
			t.Fatal(err)
		}
		g := growTrees(rows, cfg)
		if complete := cfg.SampleSize > 1<<(minCompleteDepth-1) && cfg.SampleSize <= 1<<maxCompleteDepth; complete != (f.levels > 0) {
			t.Fatalf("%d rows: complete layout %v, levels %d", n, complete, f.levels)
		}
		xs := append([][]float64{{math.NaN(), 0, 1, math.Inf(1)}, {-100, 100, 0, -1}}, rows...)
		for i := 0; i < 200; i++ {
			xs = append(xs, []float64{4 * rng.NormFloat64(), 10 * rng.NormFloat64(), 1 + rng.NormFloat64(), rng.NormFloat64()})
		}
		for _, x := range xs {
			if got, want := f.Score(x), referenceForestScore(g, f.norm, x); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%d rows: Score(%v) = %v, reference %v", n, x, got, want)
			}
		}
	}
}
