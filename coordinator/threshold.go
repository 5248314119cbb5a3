package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// ThresholdHE seals updates with threshold CKKS: devices encrypt under the collective key of a
// key epoch signed under the root of trust, the coordinator only adds ciphertexts, and the
// trustees decrypt each round's sum, exactly once, after each of a quorum of them has verified
// every device's signed update and added the updates' c1 polynomials itself. Nothing the
// coordinator holds lets it decrypt a single device's update, and nothing it can send a
// trustee makes the trustee decrypt anything but a sum of at least m_min enrolled devices'
// signed updates of that round.
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

// Open implements Sealing: it seals the sum, streams the round's contributions to the
// trustees for their commitments, and has t of them decrypt; their shares combine with the
// sealed sum's c0, which never left the coordinator.
func (t *ThresholdHE) Open(ctx context.Context, round uint64, sum aggregation.Accumulator, contribs trustee.Contributions, p trustee.RoundPrivacy) ([]float64, error) {
	acc, ok := sum.(*aggregation.EncryptedAccumulator)
	if !ok {
		return nil, fmt.Errorf("coordinator: threshold HE cannot open a %T", sum)
	}
	if contribs == nil {
		return nil, errors.New("coordinator: threshold HE needs the round's contributions")
	}
	sealed, err := acc.Seal(round)
	if err != nil {
		return nil, err
	}
	res, err := t.trustees.DecryptSum(ctx, sealed, contribs, p)
	if err != nil {
		return nil, err
	}
	addStage(ctx, StageCommitting, res.Committing)
	addStage(ctx, StageDecrypting, res.Decrypting)
	return res.Sum, nil
}

// KeyEpoch returns the signed key-epoch document and the key it approves.
func (t *ThresholdHE) KeyEpoch() (document, publicKey []byte) { return t.document, t.publicKey }

// contribution checks device d's signature over its encrypted update, when signed is set
// (the coordinator has a root of trust, so d's key is its record's), and returns what the
// trustees need of the update. minSum is the m_min of the round's task, which the device
// signed. An update that fails here never counts.
func (t *ThresholdHE) contribution(req *vigilv1.SubmitUpdateRequest, d device, signed bool, minSum uint32) (*vigilv1.Contribution, error) {
	p := t.key.Params()
	u := req.GetUpdate()
	c, err := trustee.NewContribution(p, d.record, req.GetDeviceId(), req.GetNonce(), req.GetBaseVersion(), u.GetCiphertexts(), req.GetSignature())
	if err != nil {
		return nil, reject(codes.InvalidArgument, ReasonBadUpdate, err.Error())
	}
	if !signed {
		return c, nil
	}
	key, expires, err := d.signingKey()
	if err != nil {
		return nil, reject(codes.PermissionDenied, ReasonBadSignature, fmt.Sprintf("device %q has no update-signing key on record: %v", req.GetDeviceId(), err))
	}
	if now := time.Now(); expires.Before(now.Add(MinRecordValidity)) {
		return nil, reject(codes.FailedPrecondition, ReasonBadRecord, fmt.Sprintf(
			"device %q's record expires at %s, within %v: the trustees would refuse the round's sum; enrol again with a fresh record",
			req.GetDeviceId(), expires.UTC().Format(time.RFC3339), MinRecordValidity))
	}
	heads := make([][32]byte, len(c.GetHeadDigests()))
	for j, h := range c.GetHeadDigests() {
		heads[j] = [32]byte(h)
	}
	stmt, err := he.UpdateStatement(p, he.UpdateBinding(t.key.Epoch, req.GetRound(), req.GetDeviceId(), req.GetNonce()), req.GetBaseVersion(), minSum, heads, c.GetC1())
	if err != nil {
		return nil, reject(codes.InvalidArgument, ReasonBadUpdate, err.Error())
	}
	if err := key.Verify(stmt[:], req.GetSignature(), he.UpdateContext); err != nil {
		return nil, reject(codes.PermissionDenied, ReasonBadSignature, fmt.Sprintf(
			"the update's signature does not verify under device %q's key for round %d of key epoch %d: %v", req.GetDeviceId(), req.GetRound(), t.key.Epoch, err))
	}
	return c, nil
}
