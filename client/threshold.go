package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// KeySource gives the device the collective public key of a key epoch, verified.
type KeySource interface {
	KeyEpoch(ctx context.Context, epoch uint64) (*he.KeyEpoch, error)
}

// ThresholdSealer encrypts updates under the collective threshold CKKS key of the task's key
// epoch, bound to the task's round and nonce and to this device. It refuses tasks asking for
// plaintext.
type ThresholdSealer struct {
	device string
	keys   KeySource
	key    *he.KeyEpoch
	enc    *he.Encryptor
}

var _ Sealer = (*ThresholdSealer)(nil)

// NewThresholdSealer returns the sealer of device deviceID, taking keys from keys.
func NewThresholdSealer(deviceID string, keys KeySource) *ThresholdSealer {
	return &ThresholdSealer{device: deviceID, keys: keys}
}

// Seal implements Sealer.
func (s *ThresholdSealer) Seal(ctx context.Context, t *vigilv1.Task, delta []float64) (*vigilv1.Update, error) {
	e := t.GetEncryption()
	if e.GetEncoding() != vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD {
		return nil, fmt.Errorf("client: the task asks for %v; this device sends only encrypted updates", e.GetEncoding())
	}
	if s.key == nil || s.key.Epoch != e.GetKeyEpoch() {
		key, err := s.keys.KeyEpoch(ctx, e.GetKeyEpoch())
		if err != nil {
			return nil, fmt.Errorf("client: key epoch %d: %w", e.GetKeyEpoch(), err)
		}
		enc, err := he.NewEncryptor(key)
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		s.key, s.enc = key, enc
	}
	if id := s.key.Params().ID(); e.GetParamsId() != id {
		return nil, fmt.Errorf("client: the task names HE parameters %q, key epoch %d uses %q", e.GetParamsId(), s.key.Epoch, id)
	}
	c := t.GetPrivacy().GetClipNorm()
	if !(c > 0) {
		return nil, errors.New("client: encrypted updates need the task's clip norm, and it has none")
	}
	cts, err := s.enc.Encrypt(delta, c, he.UpdateBinding(s.key.Epoch, t.GetRound(), s.device, t.GetNonce()))
	if err != nil {
		return nil, fmt.Errorf("client: encrypt: %w", err)
	}
	return &vigilv1.Update{
		Encoding:  vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD,
		Dimension: uint64(len(delta)), ParamsId: s.key.Params().ID(), KeyEpoch: s.key.Epoch, Ciphertexts: cts,
	}, nil
}

// SignedKeys fetches key epochs from the coordinator and accepts only keys whose key-epoch
// document verifies under the device's root of trust: a coordinator cannot make the device
// encrypt under a key the organisation did not approve. Safe for concurrent use.
type SignedKeys struct {
	api      vigilv1.CoordinatorClient
	params   he.Params
	now      func() time.Time
	mu       sync.Mutex
	verifier *release.Verifier
	follow   func() []byte // Follow's source of newer roots, or nil
}

// NewSignedKeys returns a KeySource checking key epochs against the root envelope root (the
// pinned root, or a newer one the device accepted).
func NewSignedKeys(api vigilv1.CoordinatorClient, root []byte, now func() time.Time) (*SignedKeys, error) {
	// The verifier is used only for key epochs; the model name is not consulted.
	v, err := release.NewVerifier(release.VerifierConfig{Root: root, Model: "key-epochs"})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &SignedKeys{api: api, params: he.DefaultParams(), now: now, verifier: v}, nil
}

// Follow makes key epochs verify under the newest root src returns whenever it is newer than
// the one held (see PolicyGuard.Follow): a rotation of the trustees' keys reaches the device
// through its updaters.
func (k *SignedKeys) Follow(src func() []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.follow = src
}

// KeyEpoch implements KeySource.
func (k *SignedKeys) KeyEpoch(ctx context.Context, epoch uint64) (*he.KeyEpoch, error) {
	resp, err := k.api.GetKeyEpoch(ctx, &vigilv1.GetKeyEpochRequest{Epoch: epoch})
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	if k.follow != nil {
		if env := k.follow(); len(env) > 0 {
			if r, err := release.ParseTrustedRoot(env); err == nil && r.Version > k.verifier.Root().Version {
				// The key-epoch floor carries over: a rotation is no licence to go back to an
				// older epoch.
				if v, err := release.NewVerifier(release.VerifierConfig{Root: env, Model: "key-epochs", KeyEpoch: k.verifier.KeyEpoch()}); err == nil {
					k.verifier = v
				}
			}
		}
	}
	doc, err := k.verifier.VerifyKeyEpoch(resp.GetDocument(), resp.GetPublicKey(), k.now())
	k.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("the key-epoch document does not verify under this device's root of trust: %w", err)
	}
	if doc.Epoch != epoch || doc.Params != k.params.ID() {
		return nil, fmt.Errorf("the signed document approves epoch %d with parameters %q, the task needs epoch %d with %q", doc.Epoch, doc.Params, epoch, k.params.ID())
	}
	key, err := he.ParseKeyEpoch(k.params, resp.GetPublicKey())
	if err != nil {
		return nil, err
	}
	if key.Epoch != epoch {
		return nil, fmt.Errorf("the key is for epoch %d, not %d", key.Epoch, epoch)
	}
	return key, nil
}
