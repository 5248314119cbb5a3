package coordinator

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// ThresholdHE seals updates with threshold CKKS: devices encrypt under the collective key of a
// key epoch signed under the root of trust, the coordinator only adds ciphertexts, and a quorum
// of trustees decrypts each round's sum, exactly once. Nothing the coordinator holds lets it
// decrypt a single device's update.
type ThresholdHE struct {
	key       *he.KeyEpoch
	publicKey []byte // the key epoch's canonical encoding
	document  []byte // the signed key-epoch document devices verify
	trustees  *trustee.Client
}

var _ Sealing = (*ThresholdHE)(nil)

// NewThresholdHE returns the sealing of key epoch key, whose signed document devices fetch to
// verify the key, decrypting sums with trustees.
func NewThresholdHE(key *he.KeyEpoch, signedDocument []byte, trustees *trustee.Client) (*ThresholdHE, error) {
	if key == nil || trustees == nil || len(signedDocument) == 0 {
		return nil, errors.New("coordinator: threshold HE needs a key epoch, its signed document and trustees")
	}
	pk, err := key.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	return &ThresholdHE{key: key, publicKey: pk, document: signedDocument, trustees: trustees}, nil
}

// Encryption implements Sealing.
func (t *ThresholdHE) Encryption() *vigilv1.EncryptionConfig {
	return &vigilv1.EncryptionConfig{
		Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD,
		ParamsId: t.key.Params().ID(), KeyEpoch: t.key.Epoch,
	}
}

// NewSum implements Sealing.
func (t *ThresholdHE) NewSum(dim int) (aggregation.Accumulator, error) {
	return aggregation.NewEncryptedAccumulator(t.key, dim)
}

// RestoreSum implements Sealing.
func (t *ThresholdHE) RestoreSum(dim int, data []byte) (aggregation.Accumulator, error) {
	return aggregation.UnmarshalEncryptedAccumulator(t.key, data)
}

// Open implements Sealing: it seals the sum and has t trustees decrypt it.
func (t *ThresholdHE) Open(ctx context.Context, round uint64, sum aggregation.Accumulator, clipNorm float64) ([]float64, error) {
	acc, ok := sum.(*aggregation.EncryptedAccumulator)
	if !ok {
		return nil, fmt.Errorf("coordinator: threshold HE cannot open a %T", sum)
	}
	sealed, err := acc.Seal(round)
	if err != nil {
		return nil, err
	}
	res, err := t.trustees.DecryptSum(ctx, sealed, clipNorm)
	if err != nil {
		return nil, err
	}
	return res.Sum, nil
}

// KeyEpoch returns the signed key-epoch document and the key it approves.
func (t *ThresholdHE) KeyEpoch() (document, publicKey []byte) { return t.document, t.publicKey }
