package client

import (
	"fmt"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// SignUpdate returns device deviceID's signature, with key (the key its device record names),
// of its encrypted update u for task t: an ML-DSA-65 signature under he.UpdateContext of the
// update statement, which binds key epoch, round, device, nonce and base version to every byte
// of every ciphertext. Trustees count an update only with a valid one, so a coordinator cannot
// count updates no enrolled device sent.
func SignUpdate(key *sig.PrivateKey, deviceID string, t *vigilv1.Task, u *vigilv1.Update) ([]byte, error) {
	if u.GetEncoding() != vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD {
		return nil, fmt.Errorf("client: only encrypted updates are signed, not %v", u.GetEncoding())
	}
	params := he.DefaultParams()
	if u.GetParamsId() != params.ID() {
		return nil, fmt.Errorf("client: the update uses HE parameters %q, this device knows %q", u.GetParamsId(), params.ID())
	}
	heads, c1, err := he.UpdateParts(params, u.GetCiphertexts())
	if err != nil {
		return nil, fmt.Errorf("client: sign update: %w", err)
	}
	st, err := he.UpdateStatement(params, he.UpdateBinding(u.GetKeyEpoch(), t.GetRound(), deviceID, t.GetNonce()), t.GetBaseVersion(),
		t.GetPrivacy().GetMinParticipants(), heads, c1)
	if err != nil {
		return nil, fmt.Errorf("client: sign update: %w", err)
	}
	s, err := key.Sign(st[:], he.UpdateContext)
	if err != nil {
		return nil, fmt.Errorf("client: sign update: %w", err)
	}
	return s, nil
}
