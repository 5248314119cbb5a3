package release

import (
	"fmt"
	"time"
)

// VerifierConfig is a device's persisted trust state.
type VerifierConfig struct {
	// Root is the encoded envelope of the newest root the device trusts: the pinned root on
	// first start, later whatever Verifier.RootEnvelope returned.
	Root []byte
	// Model is the model name the device runs.
	Model string
	// Version is the installed model version (0 if none); nothing older or equal is installed.
	Version uint64
	// KeyEpoch is the newest key epoch the device accepted (0 if none).
	KeyEpoch uint64
}

func (c *VerifierConfig) validate() (*Root, error) {
	if len(c.Root) == 0 {
		return nil, fmt.Errorf("release: verifier: no trusted root given")
	}
	if err := validName("verifier model", c.Model); err != nil {
		return nil, err
	}
	r, err := ParseTrustedRoot(c.Root)
	if err != nil {
		return nil, fmt.Errorf("release: verifier: trusted root: %w", err)
	}
	return r, nil
}

// Verifier checks releases for one device. Its Verify methods are pure functions of the trust
// state, the input bytes and the time passed in. It is not safe for concurrent use.
type Verifier struct {
	root     *Root
	rootEnv  []byte
	model    string
	version  uint64
	keyEpoch uint64
}

// NewVerifier returns a Verifier starting from cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	r, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	return &Verifier{
		root:     r,
		rootEnv:  append([]byte(nil), cfg.Root...),
		model:    cfg.Model,
		version:  cfg.Version,
		keyEpoch: cfg.KeyEpoch,
	}, nil
}

// Root returns the newest trusted root.
func (v *Verifier) Root() *Root { return v.root }

// RootEnvelope returns the encoded newest trusted root, for the device to persist.
func (v *Verifier) RootEnvelope() []byte { return append([]byte(nil), v.rootEnv...) }

// Version returns the installed version the verifier compares against.
func (v *Verifier) Version() uint64 { return v.version }

// KeyEpoch returns the newest accepted key epoch.
func (v *Verifier) KeyEpoch() uint64 { return v.keyEpoch }

// SetInstalled records that version is now installed. It refuses to go backwards.
func (v *Verifier) SetInstalled(version uint64) error {
	if version < v.version {
		return fmt.Errorf("%w: cannot record version %d as installed over %d", ErrRollback, version, v.version)
	}
	v.version = version
	return nil
}

// UpdateRoot verifies data as the root following the trusted one and, if it verifies, trusts it.
func (v *Verifier) UpdateRoot(data []byte) error {
	next, err := v.root.VerifyNext(data)
	if err != nil {
		return err
	}
	v.root, v.rootEnv = next, append([]byte(nil), data...)
	return nil
}

// CheckRoot refuses an expired trusted root: until a newer root is found, nothing it vouches
// for can be believed.
func (v *Verifier) CheckRoot(now time.Time) error {
	if !now.Before(v.root.Expires) {
		return fmt.Errorf("%w: trusted root version %d expired at %s", ErrExpired, v.root.Version, v.root.Expires.Format(time.RFC3339))
	}
	return nil
}

// VerifyLatest verifies a Latest pointer for the device's model. A pointer to the installed
// version verifies (the caller compares versions); one to an older version is ErrRollback.
func (v *Verifier) VerifyLatest(data []byte, now time.Time) (*Latest, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	payload, err := v.root.verifyRole(env, RoleTimestamp, TypeLatest)
	if err != nil {
		return nil, err
	}
	l, err := decodeLatest(payload)
	if err != nil {
		return nil, err
	}
	if l.Model != v.model {
		return nil, fmt.Errorf("%w: pointer is for model %q, device runs %q", ErrMixAndMatch, l.Model, v.model)
	}
	if !now.Before(l.Expires) {
		return nil, fmt.Errorf("%w: latest pointer (version %d) expired at %s", ErrExpired, l.Version, l.Expires.Format(time.RFC3339))
	}
	if l.Version < v.version {
		return nil, fmt.Errorf("%w: latest pointer names version %d, device runs %d", ErrRollback, l.Version, v.version)
	}
	return l, nil
}

// VerifyManifest verifies the manifest that the verified pointer l names.
func (v *Verifier) VerifyManifest(data []byte, l *Latest, now time.Time) (*Manifest, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	payload, err := v.root.verifyRole(env, RoleRelease, TypeManifest)
	if err != nil {
		return nil, err
	}
	if got := sha256Hex(payload); got != l.ManifestSHA256 {
		return nil, fmt.Errorf("%w: manifest sha256 %s, latest pointer says %s", ErrMixAndMatch, got[:12], l.ManifestSHA256[:12])
	}
	m, err := decodeManifest(payload)
	if err != nil {
		return nil, err
	}
	if m.Model != l.Model || m.Version != l.Version {
		return nil, fmt.Errorf("%w: manifest is %s v%d, pointer names %s v%d", ErrMixAndMatch, m.Model, m.Version, l.Model, l.Version)
	}
	if m.Version <= v.version {
		return nil, fmt.Errorf("%w: manifest version %d is not newer than installed %d", ErrRollback, m.Version, v.version)
	}
	if !now.Before(m.Expires) {
		return nil, fmt.Errorf("%w: manifest %s v%d expired at %s", ErrExpired, m.Model, m.Version, m.Expires.Format(time.RFC3339))
	}
	return m, nil
}

// VerifyKeyEpoch verifies a key-epoch document and the collective public key it approves.
// Epochs older than the newest accepted one are refused; on success the epoch is accepted.
func (v *Verifier) VerifyKeyEpoch(data, publicKey []byte, now time.Time) (*KeyEpoch, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	payload, err := v.root.verifyRole(env, RoleTrustees, TypeKeyEpoch)
	if err != nil {
		return nil, err
	}
	k, err := decodeKeyEpoch(payload)
	if err != nil {
		return nil, err
	}
	if k.Epoch < v.keyEpoch {
		return nil, fmt.Errorf("%w: key epoch %d is older than accepted epoch %d", ErrRollback, k.Epoch, v.keyEpoch)
	}
	if !now.Before(k.Expires) {
		return nil, fmt.Errorf("%w: key epoch %d expired at %s", ErrExpired, k.Epoch, k.Expires.Format(time.RFC3339))
	}
	if int64(len(publicKey)) != k.PublicKeySize || sha256Hex(publicKey) != k.PublicKeySHA256 {
		return nil, fmt.Errorf("%w: collective public key of epoch %d does not match the signed sha256/size", ErrHashMismatch, k.Epoch)
	}
	v.keyEpoch = k.Epoch
	return k, nil
}
