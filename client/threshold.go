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
	root     []byte // the envelope of the root verifier checks under
	verifier *release.Verifier
	follow   func() []byte // Follow's source of newer roots, or nil
	// floorPath, if set, is the file recording the newest epoch accepted across restarts
	// (PersistTo), with trusteesRole of the root it was accepted under.
	floorPath string
	floor     uint64
	floorRole string
}

// KeyEpochFloorFile is the file in a device's directory that records the newest key epoch it
// has accepted.
const KeyEpochFloorFile = "key-epoch.version"

// PersistTo makes the key-epoch floor survive restarts: it reads the newest epoch recorded in
// path (none if the file is missing) and records there, durably, each newer epoch it accepts
// before the key is used. Without it a restarted device encrypted again under an older epoch
// the trustees had replaced, as long as its document had not expired. As with the privacy
// policy's floor (PolicyGuard.PersistTo), a floor recorded under trustees' keys the root no
// longer names is not applied, so that a thief of retired keys cannot lock devices out of the
// organisation's next epoch for good.
func (k *SignedKeys) PersistTo(path string) error {
	v, role, err := readFloor(path)
	if err != nil {
		return fmt.Errorf("client: key epoch floor: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.floorPath, k.floor, k.floorRole = path, v, role
	if role == trusteesRole(k.verifier.Root()) && v > k.verifier.KeyEpoch() {
		verifier, err := release.NewVerifier(release.VerifierConfig{Root: k.root, Model: "key-epochs", KeyEpoch: v})
		if err != nil {
			return fmt.Errorf("client: %w", err)
		}
		k.verifier = verifier
	}
	return nil
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
	return &SignedKeys{api: api, params: he.DefaultParams(), now: now, root: root, verifier: v}, nil
}

// Follow makes key epochs verify under the newest root src returns whenever it is newer than
// the one held (see PolicyGuard.Follow): a rotation of the trustees' keys reaches the device
// through its updaters.
func (k *SignedKeys) Follow(src func() []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.follow = src
}

// recordLocked records epoch, just accepted, in the floor file if it raises the floor or the
// trustees role changed. k.mu must be held.
func (k *SignedKeys) recordLocked(epoch uint64) error {
	role := trusteesRole(k.verifier.Root())
	if k.floorPath == "" || epoch <= k.floor && role == k.floorRole {
		return nil
	}
	if err := writeFloor(k.floorPath, epoch, role); err != nil {
		return fmt.Errorf("client: recording key epoch %d: %w", epoch, err)
	}
	k.floor, k.floorRole = epoch, role
	return nil
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
					k.root, k.verifier = env, v
				}
			}
		}
	}
	doc, err := k.verifier.VerifyKeyEpoch(resp.GetDocument(), resp.GetPublicKey(), k.now())
	if err == nil {
		err = k.recordLocked(doc.Epoch)
	}
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
