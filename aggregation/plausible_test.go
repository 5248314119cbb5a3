package aggregation

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// honestSum is the sum of m updates of norm exactly c in random directions, each with
// Gaussian noise of standard deviation sigma per coordinate.
func honestSum(rng *rand.Rand, m, d int, c, sigma float64) []float64 {
	sum := make([]float64, d)
	u := make([]float64, d)
	for range m {
		var n2 float64
		for i := range u {
			u[i] = rng.NormFloat64()
			n2 += u[i] * u[i]
		}
		for i := range sum {
			sum[i] += u[i]*c/math.Sqrt(n2) + sigma*rng.NormFloat64()
		}
	}
	return sum
}

func TestCheckSumAcceptsHonestSums(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name     string
		m, d     int
		c, sigma float64
	}{
		{"no DP", 25, 1229, 1, 0},
		{"demo DP", 25, 1229, 1, 1.0 / math.Sqrt(20)},
		{"large model", 20, 100_000, 0.5, 0.1},
		{"one coordinate", 3, 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := SumBound{Contributors: tc.m, ClipNorm: tc.c, DeviceNoiseStd: tc.sigma, Precision: 1e-6 * tc.c}
			for trial := range 5 {
				if err := CheckSum(honestSum(rng, tc.m, tc.d, tc.c, tc.sigma), b); err != nil {
					t.Fatalf("trial %d: honest sum refused: %v", trial, err)
				}
			}
		})
	}
}

// TestAttackKeyLeakThroughRelease is the review's attack 5 as the coordinator would see the
// decrypted sum: a compromised device submitted (0, 64·Δ), Δ the encoding scale, so the sum carries 64·s in units of
// the clip norm (s the collective secret: each coefficient a sum of three ternary keys). The
// check refuses the sum before anything is released, down to 8·s. A leak of about 1·s per
// coordinate, comparable to the DP noise, still passes: that residual risk is stated in the
// README and needs proofs of well-formed ciphertexts to close.
func TestAttackKeyLeakThroughRelease(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const m, d, c = 25, 1229, 1.0
	sigma := 1.0 / math.Sqrt(20)
	for _, scale := range []float64{64, 8} {
		sum := honestSum(rng, m, d, c, sigma)
		for i := range sum {
			s := float64(rng.IntN(3)-1) + float64(rng.IntN(3)-1) + float64(rng.IntN(3)-1)
			sum[i] += scale * c * s
		}
		err := CheckSum(sum, SumBound{Contributors: m, ClipNorm: c, DeviceNoiseStd: sigma, Precision: 1e-6})
		if !errors.Is(err, ErrImplausibleSum) {
			t.Errorf("leak of %g·s per coordinate passed the check: %v", scale, err)
		}
	}
	if err := CheckSum([]float64{math.NaN()}, SumBound{Contributors: 2, ClipNorm: 1}); !errors.Is(err, ErrImplausibleSum) {
		t.Errorf("NaN passed: %v", err)
	}
}
