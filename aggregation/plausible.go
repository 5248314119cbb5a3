package aggregation

import (
	"errors"
	"fmt"
	"math"
)

// ErrImplausibleSum means a decrypted sum cannot be the sum of the round's clipped, noised
// updates: some contribution was not a well-formed encryption of a clipped update. The classic
// case is a compromised device that submits a ciphertext (0, c1) of its own making: its
// "update" decrypts to c1·s, a multiple of the collective secret key, which the release would
// otherwise publish. The key epoch whose sum failed must be retired.
var ErrImplausibleSum = errors.New("aggregation: decrypted sum is not a sum of clipped, noised updates")

// SumBound describes what a round's sum can be when every contribution is honest.
type SumBound struct {
	// Contributors is the number of updates in the sum.
	Contributors int
	// ClipNorm is C: every update's L2 norm before noise is at most C.
	ClipNorm float64
	// DeviceNoiseStd is the standard deviation of the Gaussian noise each device adds to every
	// coordinate (0 without differential privacy).
	DeviceNoiseStd float64
	// Precision is the largest error the decryption may add to one coordinate (for threshold
	// CKKS, he.Params.ErrorBound times C).
	Precision float64
}

// tailSigmas is how far into the Gaussian tail the bounds reach: the noise's norm exceeds
// sigma (sqrt(d) + 8) with probability below e^-32 (Laurent-Massart concentration of the
// chi distribution), one coordinate exceeds 9 sigma with probability below 2e-19, so an
// honest round fails the check essentially never.
const tailSigmas = 8

// CheckSum returns an error wrapping ErrImplausibleSum if sum is outside what b allows: a
// coordinate that is not finite, an L2 norm above m C + sqrt(m) sigma (sqrt(d) + 8) + the
// precision, or a coordinate above m C + 9 sqrt(m) sigma + the precision.
//
// The check bounds, it does not prove: a malicious device can still hide a multiple of the key
// small enough to pass it inside the sum's legitimate range, and a coordinator that sees the
// decrypted sum can skip the check (see the README's limits). It stops what the review found:
// a leak large enough to read the key from one release.
func CheckSum(sum []float64, b SumBound) error {
	if b.Contributors < 1 || !(b.ClipNorm > 0) || b.DeviceNoiseStd < 0 || b.Precision < 0 {
		return fmt.Errorf("aggregation: CheckSum: invalid bound %+v", b)
	}
	m, d := float64(b.Contributors), float64(len(sum))
	noise := math.Sqrt(m) * b.DeviceNoiseStd
	normMax := m*b.ClipNorm + noise*(math.Sqrt(d)+tailSigmas) + b.Precision*math.Sqrt(d)
	coordMax := m*b.ClipNorm + (tailSigmas+1)*noise + b.Precision
	var sq float64
	for i, v := range sum {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: coordinate %d is %v", ErrImplausibleSum, i, v)
		}
		if math.Abs(v) > coordMax {
			return fmt.Errorf("%w: coordinate %d is %.4g, no sum of %d clipped, noised updates exceeds %.4g",
				ErrImplausibleSum, i, v, b.Contributors, coordMax)
		}
		sq += v * v
	}
	if norm := math.Sqrt(sq); norm > normMax {
		return fmt.Errorf("%w: its L2 norm is %.4g, no sum of %d clipped, noised updates exceeds %.4g",
			ErrImplausibleSum, norm, b.Contributors, normMax)
	}
	return nil
}
