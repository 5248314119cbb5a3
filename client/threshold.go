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
// encrypt under a key the organisation did not approve. It refuses an epoch older than the
// newest it has accepted, so a coordinator cannot take the device back to a key the trustees
// replaced either. Safe for concurrent use.
type SignedKeys struct {
	api    vigilv1.CoordinatorClient
	params he.Params
	now    func() time.Time

	mu       sync.Mutex
	verifier *release.Verifier // under the newest root followed; the epochs it took are under floor
	follow   func() []byte     // Follow's source of newer roots, or nil
	// floor is the newest epoch accepted, under the trustees' keys (trusteesRole).
	floor versionFloor
}

// KeyEpochFloorFile is the file in a device's directory that records the newest key epoch it
// has accepted.
const KeyEpochFloorFile = "key-epoch.version"

// PersistTo makes the key-epoch floor survive restarts: it reads the newest epoch recorded in
// path (none if the file is missing) and records there, durably, each newer epoch it accepts
// before the key is used. Without it a restarted device encrypted again under an older epoch
// the trustees had replaced, as long as its document had not expired. As with the privacy
// policy's floor (PolicyGuard.PersistTo), the record names the trustees' keys it was set
// under, and a root that changes them resets it: a thief of retired keys, having had devices
// accept an epoch numbered 2^40, would otherwise keep them from the organisation's next for
// good.
func (k *SignedKeys) PersistTo(path string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.floor.persistTo(path); err != nil {
		return fmt.Errorf("client: key epoch floor: %w", err)
	}
	return nil
}

// NewSignedKeys returns a KeySource checking key epochs against the root envelope root (the
// pinned root, or a newer one the device accepted).
func NewSignedKeys(api vigilv1.CoordinatorClient, root []byte, now func() time.Time) (*SignedKeys, error) {
	v, err := keyEpochVerifier(root)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &SignedKeys{api: api, params: he.DefaultParams(), now: now, verifier: v}, nil
}

// keyEpochVerifier verifies key epochs under root, leaving the floor to SignedKeys (the model
// name is not consulted).
func keyEpochVerifier(root []byte) (*release.Verifier, error) {
	return release.NewVerifier(release.VerifierConfig{Root: root, Model: "key-epochs"})
}

// Follow makes key epochs verify under the newest root src returns whenever it is newer than
// the one held (see PolicyGuard.Follow): a rotation of the trustees' keys reaches the device
// through its updaters. The floor carries over a rotation that keeps the trustees' keys.
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
	_, err = k.acceptLocked(resp, epoch)
	k.mu.Unlock()
	if err != nil {
		return nil, err
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

// acceptLocked verifies the key-epoch document of resp under the newest root followed,
// checks that it is epoch's with this device's parameters, holds it to the floor and records
// it. k.mu must be held.
func (k *SignedKeys) acceptLocked(resp *vigilv1.GetKeyEpochResponse, epoch uint64) (*release.KeyEpoch, error) {
	if k.follow != nil {
		if env := k.follow(); len(env) > 0 {
			if r, err := release.ParseTrustedRoot(env); err == nil && r.Version > k.verifier.Root().Version {
				if v, err := keyEpochVerifier(env); err == nil {
					k.verifier = v
				}
			}
		}
	}
	role := trusteesRole(k.verifier.Root())
	k.floor.under(role)
	doc, err := k.verifier.VerifyKeyEpoch(resp.GetDocument(), resp.GetPublicKey(), k.now())
	if err != nil {
		return nil, fmt.Errorf("the key-epoch document does not verify under this device's root of trust: %w", err)
	}
	// Before the floor moves: another epoch's document, or one for parameters this device
	// does not use, must not raise it.
	if doc.Epoch != epoch || doc.Params != k.params.ID() {
		return nil, fmt.Errorf("the signed document approves epoch %d with parameters %q, the task needs epoch %d with %q", doc.Epoch, doc.Params, epoch, k.params.ID())
	}
	if doc.Epoch < k.floor.version {
		return nil, fmt.Errorf("the key-epoch document does not verify under this device's root of trust: %w: key epoch %d is older than accepted epoch %d", release.ErrRollback, doc.Epoch, k.floor.version)
	}
	if err := k.floor.raise(doc.Epoch, role); err != nil {
		return nil, fmt.Errorf("client: recording key epoch %d: %w", doc.Epoch, err)
	}
	return doc, nil
}
