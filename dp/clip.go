package dp

import (
	"fmt"
	"math"
)

// clipSafety shrinks a clipped vector by a relative 2^-40 below the clip
// norm. Floating-point scaling can leave the norm a few ulps above C; the
// margin, far larger than those ulps for any vector length up to 2^30,
// makes the bound hold in exact real arithmetic, which is what the privacy
// proof needs.
const clipSafety = 1 - 0x1p-40

// ClipL2 scales v in place so that its L2 norm is at most c, and returns
// the norm v had before clipping. A vector already inside the ball is left
// unchanged, except that a vector within a relative 2^-40 of the boundary
// is shrunk by that margin: after ClipL2 the exact (real-number) norm of v
// is at most c, not just its floating-point estimate.
//
// c must be a positive finite number and v must hold only finite values;
// otherwise ClipL2 returns an error and leaves v unchanged.
func ClipL2(v []float64, c float64) (norm float64, err error) {
	if !(c > 0) || math.IsInf(c, 1) {
		return 0, paramErr("clip norm C", c, "a finite number > 0")
	}
	norm, err = l2Norm(v)
	if err != nil {
		return 0, err
	}
	limit := c * clipSafety
	if norm <= limit {
		return norm, nil
	}
	f := limit / norm
	for i := range v {
		v[i] *= f
	}
	return norm, nil
}

// l2Norm computes the L2 norm with scaling (no overflow for huge entries,
// no underflow for tiny ones) and compensated summation (relative error a
// few ulps regardless of length).
func l2Norm(v []float64) (float64, error) {
	maxAbs := 0.0
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("%w: coordinate %d of the update is %v", ErrInvalidParameter, i, x)
		}
		maxAbs = math.Max(maxAbs, math.Abs(x))
	}
	if maxAbs == 0 {
		return 0, nil
	}
	// Neumaier summation of (x/maxAbs)².
	sum, comp := 0.0, 0.0
	for _, x := range v {
		y := x / maxAbs
		t := y * y
		s := sum + t
		if math.Abs(sum) >= t {
			comp += (sum - s) + t
		} else {
			comp += (t - s) + sum
		}
		sum = s
	}
	return maxAbs * math.Sqrt(sum+comp), nil
}

// FixedDenominatorMean divides the decrypted sum in place by the expected
// number of participants, never by the observed count. DP-FedAvg divides by
// a fixed, public denominator so that one user's presence or absence
// changes the average by at most C/expected; dividing by the observed count
// would make the sensitivity depend on who took part.
func FixedDenominatorMean(sum []float64, expectedParticipants float64) error {
	if !(expectedParticipants > 0) || math.IsInf(expectedParticipants, 1) {
		return paramErr("expected participants", expectedParticipants, "a finite number > 0")
	}
	inv := 1 / expectedParticipants
	for i := range sum {
		sum[i] *= inv
	}
	return nil
}
