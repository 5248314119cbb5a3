package dp_test

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

// exactNormSquared returns Σ v_i² in exact (big.Float, 2000-bit) arithmetic.
func exactNormSquared(v []float64) *big.Float {
	sum := new(big.Float).SetPrec(2000)
	for _, x := range v {
		f := new(big.Float).SetPrec(2000).SetFloat64(x)
		sum.Add(sum, f.Mul(f, f))
	}
	return sum
}

func TestClipL2ExactBound(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 200; trial++ {
		n := 1 + r.IntN(5000)
		v := make([]float64, n)
		scale := math.Pow(10, float64(r.IntN(40)-20))
		for i := range v {
			v[i] = r.NormFloat64() * scale
		}
		c := math.Pow(10, float64(r.IntN(20)-10))
		before := exactNormSquared(v)
		norm, err := dp.ClipL2(v, c)
		if err != nil {
			t.Fatal(err)
		}
		// The returned norm is the pre-clip norm to a few ulps.
		wantNorm, _ := new(big.Float).Sqrt(before).Float64()
		if math.Abs(norm-wantNorm) > 1e-14*wantNorm {
			t.Fatalf("norm %v, want %v", norm, wantNorm)
		}
		// After clipping, the exact norm is at most c.
		c2 := new(big.Float).SetPrec(2000).SetFloat64(c)
		c2.Mul(c2, c2)
		if exactNormSquared(v).Cmp(c2) > 0 {
			t.Fatalf("trial %d: exact norm above c = %v", trial, c)
		}
	}
}

func TestClipL2Behaviour(t *testing.T) {
	v := []float64{3, 4}
	norm, err := dp.ClipL2(v, 10)
	if err != nil || norm != 5 || v[0] != 3 || v[1] != 4 {
		t.Errorf("inside the ball: norm %v v %v err %v", norm, v, err)
	}
	norm, err = dp.ClipL2(v, 1)
	if err != nil || norm != 5 || math.Abs(v[0]-0.6) > 1e-11 || math.Abs(v[1]-0.8) > 1e-11 {
		t.Errorf("clipped: norm %v v %v err %v", norm, v, err)
	}
	huge := []float64{1e300, 1e300}
	if norm, err := dp.ClipL2(huge, 1); err != nil || math.Abs(norm-math.Sqrt2*1e300) > 1e286 {
		t.Errorf("no overflow: norm %v err %v", norm, err)
	}
	if norm, err := dp.ClipL2(nil, 1); err != nil || norm != 0 {
		t.Errorf("empty: %v %v", norm, err)
	}
	for _, c := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := dp.ClipL2([]float64{1}, c); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("c = %v: err %v", c, err)
		}
	}
	bad := []float64{1, math.NaN()}
	if _, err := dp.ClipL2(bad, 1); !errors.Is(err, dp.ErrInvalidParameter) || bad[0] != 1 {
		t.Errorf("NaN coordinate: err %v, v %v", err, bad)
	}
}

func TestFixedDenominatorMean(t *testing.T) {
	sum := []float64{10, -20, 30}
	if err := dp.FixedDenominatorMean(sum, 10); err != nil || sum[0] != 1 || sum[1] != -2 || sum[2] != 3 {
		t.Errorf("got %v %v", sum, err)
	}
	if err := dp.FixedDenominatorMean(sum, 0); !errors.Is(err, dp.ErrInvalidParameter) {
		t.Errorf("zero denominator: %v", err)
	}
}
