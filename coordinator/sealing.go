package coordinator

import (
	"context"
	"fmt"

	"github.com/vigilauth/vigil/aggregation"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// Sealing is how devices protect their updates on the wire and how the coordinator opens the
// sum of a closed round. The sum is the only thing ever opened.
type Sealing interface {
	// Encryption is what tasks tell devices about sealing their updates.
	Encryption() *vigilv1.EncryptionConfig
	// NewSum returns an empty running sum for one round of dim-parameter updates.
	NewSum(dim int) (aggregation.Accumulator, error)
	// RestoreSum decodes a running sum saved with its MarshalBinary.
	RestoreSum(dim int, data []byte) (aggregation.Accumulator, error)
	// Open returns the plaintext sum of a closed round's updates, which were clipped to
	// clipNorm. contribs are the round's contributions, in the order of the sum (nil for a
	// sealing that keeps none).
	Open(ctx context.Context, round uint64, sum aggregation.Accumulator, contribs trustee.Contributions, p trustee.RoundPrivacy) ([]float64, error)
}

// Insecure sends updates in the clear: the coordinator sees every device's update. It is for
// debugging and must be chosen explicitly.
type Insecure struct{}

var _ Sealing = Insecure{}

// Encryption implements Sealing.
func (Insecure) Encryption() *vigilv1.EncryptionConfig {
	return &vigilv1.EncryptionConfig{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT}
}

// NewSum implements Sealing.
func (Insecure) NewSum(dim int) (aggregation.Accumulator, error) {
	return aggregation.NewPlainAccumulator(dim), nil
}

// RestoreSum implements Sealing.
func (Insecure) RestoreSum(dim int, data []byte) (aggregation.Accumulator, error) {
	return aggregation.UnmarshalPlainAccumulator(dim, data)
}

// Open implements Sealing.
func (Insecure) Open(_ context.Context, _ uint64, sum aggregation.Accumulator, _ trustee.Contributions, _ trustee.RoundPrivacy) ([]float64, error) {
	p, ok := sum.(*aggregation.PlainAccumulator)
	if !ok {
		return nil, fmt.Errorf("coordinator: insecure sealing cannot open a %T", sum)
	}
	return p.Sum.Values(), nil
}
