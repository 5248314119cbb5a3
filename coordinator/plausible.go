package coordinator

import (
	"fmt"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/dp"
)

// checkPlausible refuses a decrypted sum that the round's n clipped, noised updates cannot
// have produced. The threshold decryption gives the coordinator only the sum, but a
// compromised device can make its own "update" decrypt to a multiple of the collective secret
// key (it submits (0, c1) instead of an encryption), and the sum, released as the next model,
// would publish it. Nothing is released from such a round, and the key epoch must be retired.
func checkPlausible(sum []float64, n int, p roundPrivacy) error {
	if !(p.clipNorm > 0) {
		return nil // nothing bounds an unclipped update
	}
	var sigma float64
	if !p.insecureNoDP && p.noiseMultiplier > 0 {
		s, err := dp.DeviceNoiseStd(p.noiseMultiplier, p.clipNorm, p.minParticipants, p.toleratedDevices)
		if err != nil {
			return err
		}
		sigma = s
	}
	// The decryption error is below 1e-6 C (he.Params.ErrorBound); 1e-5 C leaves room.
	err := aggregation.CheckSum(sum, aggregation.SumBound{Contributors: n, ClipNorm: p.clipNorm, DeviceNoiseStd: sigma, Precision: 1e-5 * p.clipNorm})
	if err != nil {
		return fmt.Errorf("%w: a device sent a malformed ciphertext; nothing is released, and the key epoch should be retired", err)
	}
	return nil
}
