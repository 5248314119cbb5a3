package aggregation

import (
	"errors"
	"fmt"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// EncryptedAccumulator sums updates encrypted under a threshold CKKS key epoch without ever
// decrypting one: it only adds ciphertexts, in memory that does not grow with the number of
// devices. Only the sealed sum can be decrypted, by a quorum of trustees.
type EncryptedAccumulator struct {
	acc    *he.Accumulator
	params he.Params
}

var _ Accumulator = (*EncryptedAccumulator)(nil)

// NewEncryptedAccumulator returns an empty sum of dim-parameter updates under key.
func NewEncryptedAccumulator(key *he.KeyEpoch, dim int) (*EncryptedAccumulator, error) {
	acc, err := he.NewAccumulator(key.Params(), key.Epoch, dim)
	if err != nil {
		return nil, err
	}
	return &EncryptedAccumulator{acc: acc, params: key.Params()}, nil
}

// NewEncryptedChecker returns a sum of dim-parameter updates under key that keeps no sum (see
// he.NewChecker): Add and Admit check and count updates, which a sum elsewhere will hold.
func NewEncryptedChecker(key *he.KeyEpoch, dim int) (*EncryptedAccumulator, error) {
	acc, err := he.NewChecker(key.Params(), key.Epoch, dim)
	if err != nil {
		return nil, err
	}
	return &EncryptedAccumulator{acc: acc, params: key.Params()}, nil
}

// UnmarshalEncryptedAccumulator decodes what MarshalBinary encoded, for key's parameters.
func UnmarshalEncryptedAccumulator(key *he.KeyEpoch, data []byte) (*EncryptedAccumulator, error) {
	acc, err := he.ParseAccumulator(key.Params(), data)
	if err != nil {
		return nil, err
	}
	if acc.Epoch() != key.Epoch {
		return nil, fmt.Errorf("aggregation: saved sum is under key epoch %d, the current one is %d", acc.Epoch(), key.Epoch)
	}
	return &EncryptedAccumulator{acc: acc, params: key.Params()}, nil
}

// Add implements Accumulator: the ciphertexts must be under this sum's parameters and key
// epoch and bound to from.
func (a *EncryptedAccumulator) Add(from Origin, u *vigilv1.Update) error {
	_, err := a.Admit(from, u)
	return err
}

// Admit is Add, returning the update's fingerprint (see Fingerprint) from the same pass over it.
func (a *EncryptedAccumulator) Admit(from Origin, u *vigilv1.Update) ([32]byte, error) {
	p := a.acc
	switch {
	case u.GetEncoding() != vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD:
		return [32]byte{}, fmt.Errorf("%w: encoding %v, this round takes threshold CKKS ciphertexts", ErrBadUpdate, u.GetEncoding())
	case len(u.GetValues()) != 0:
		return [32]byte{}, fmt.Errorf("%w: an encrypted update carries plaintext values", ErrBadUpdate)
	case u.GetParamsId() != a.params.ID():
		return [32]byte{}, fmt.Errorf("%w: HE parameters %q, this round uses %q", ErrBadUpdate, u.GetParamsId(), a.params.ID())
	case u.GetKeyEpoch() != p.Epoch():
		return [32]byte{}, fmt.Errorf("%w: key epoch %d, this round uses %d", ErrBadUpdate, u.GetKeyEpoch(), p.Epoch())
	case u.GetDimension() != uint64(p.Dimension()):
		return [32]byte{}, fmt.Errorf("%w: dimension %d, the model has %d parameters", ErrBadUpdate, u.GetDimension(), p.Dimension())
	}
	fp, err := p.Admit(u.GetCiphertexts(), he.UpdateBinding(p.Epoch(), from.Round, from.Device, from.Nonce))
	if err != nil {
		return [32]byte{}, errors.Join(ErrBadUpdate, err)
	}
	return fp, nil
}

// Count implements Accumulator.
func (a *EncryptedAccumulator) Count() int { return a.acc.Count() }

// MarshalBinary implements Accumulator.
func (a *EncryptedAccumulator) MarshalBinary() ([]byte, error) { return a.acc.MarshalBinary() }

// Seal freezes the sum for round; afterwards it takes no more updates.
func (a *EncryptedAccumulator) Seal(round uint64) (*he.Sum, error) { return a.acc.Seal(round) }

// Fingerprint returns what the sum's replay check keys u on, as from sent it (see
// he.Accumulator.Fingerprint).
func (a *EncryptedAccumulator) Fingerprint(from Origin, u *vigilv1.Update) ([32]byte, error) {
	p := a.acc
	return p.Fingerprint(u.GetCiphertexts(), he.UpdateBinding(p.Epoch(), from.Round, from.Device, from.Nonce))
}

// Seen reports whether an update with fingerprint fp may be in the sum.
func (a *EncryptedAccumulator) Seen(fp [32]byte) bool { return a.acc.Seen(fp) }

// Merge adds o, a sum of other updates of the same round (see he.Accumulator.Merge).
func (a *EncryptedAccumulator) Merge(o *EncryptedAccumulator) error { return a.acc.Merge(o.acc) }
