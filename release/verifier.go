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
	// Version is the installed model version (0 if none): the rollback floor. Nothing older is
	// accepted and nothing equal is fetched again.
	Version uint64
	// Installed is the manifest envelope of Version, if the device has it. A new root under
	// which it no longer verifies (the release keys that signed it were rotated out) resets the
	// floor to 0, as TUF does after a key rotation, so that a release signed with compromised
	// keys at a huge version cannot lock out every genuine release that follows.
	Installed []byte
	// Skip lists releases above the floor that the device already holds or has refused (a
	// candidate in shadow, rejected releases): Fetch treats a pointer naming one of them as
	// nothing new.
	Skip []ReleaseRef
	// KeyEpoch is the newest key epoch the device accepted (0 if none).
	KeyEpoch uint64
}

// ReleaseRef names one release as a pointer does: its version and the SHA-256 of its manifest
// payload. Versions alone do not name a release: after the release key was stolen and rotated
// out, the release team publishes, under the new keys, its own release of a version number the
// thief's release took.
type ReleaseRef struct {
	Version uint64
	// ManifestSHA256 is the lowercase hex SHA-256 of the manifest payload. Empty matches every
	// manifest of Version; only a device's record from before hashes were kept has none.
	ManifestSHA256 string
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
	root      *Root
	rootEnv   []byte
	model     string
	version   uint64
	installed []byte // manifest envelope of version, or nil
	// The installed manifest's payload hash and expiry, when installed is set.
	installedSHA     string
	installedExpires time.Time
	floorSet         bool // a root update reset the floor
	skip             map[ReleaseRef]bool
	refused          map[ReleaseRef]*RefusedRelease // files that matched no stored copy
	keyEpoch         uint64
	fetchBudget      int64 // bytes one Fetch may read; 0 means MaxFetchBytes (tests lower it)
}

// maxFetch returns what one Fetch may read from the store.
func (v *Verifier) maxFetch() int64 {
	if v.fetchBudget > 0 {
		return v.fetchBudget
	}
	return MaxFetchBytes
}

// NewVerifier returns a Verifier starting from cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	r, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		root:      r,
		rootEnv:   append([]byte(nil), cfg.Root...),
		model:     cfg.Model,
		version:   cfg.Version,
		installed: append([]byte(nil), cfg.Installed...),
		skip:      map[ReleaseRef]bool{},
		keyEpoch:  cfg.KeyEpoch,
	}
	if len(cfg.Installed) == 0 {
		v.installed = nil
	}
	for _, r := range cfg.Skip {
		v.skip[r] = true
	}
	// A device that restarts after a rotation it had not yet applied to its floor applies it now.
	v.checkFloor()
	return v, nil
}

// Root returns the newest trusted root.
func (v *Verifier) Root() *Root { return v.root }

// RootEnvelope returns the encoded newest trusted root, for the device to persist.
func (v *Verifier) RootEnvelope() []byte { return append([]byte(nil), v.rootEnv...) }

// Version returns the installed version the verifier compares against.
func (v *Verifier) Version() uint64 { return v.version }

// KeyEpoch returns the newest accepted key epoch.
func (v *Verifier) KeyEpoch() uint64 { return v.keyEpoch }

// SetInstalled records that version is now installed. It refuses to go backwards. Prefer
// SetInstalledManifest, which lets a later key rotation reset the floor.
//
// Without the installed manifest, Fetch calls any pointer naming version up to date: it can
// neither compare the pointer's manifest hash with the installed one nor see that the installed
// manifest has expired.
func (v *Verifier) SetInstalled(version uint64) error {
	if version < v.version {
		return fmt.Errorf("%w: cannot record version %d as installed over %d", ErrRollback, version, v.version)
	}
	v.version, v.installed, v.installedSHA, v.installedExpires = version, nil, "", time.Time{}
	return nil
}

// SetInstalledManifest records that the release whose manifest envelope is manifest is now
// installed: its version becomes the floor. Call it only for a release the device verified
// and installed, never for one it refused: the floor is what a forged release with a huge
// version would try to raise.
func (v *Verifier) SetInstalledManifest(manifest []byte) error {
	m, sum, err := v.verifyInstalled(manifest)
	if err != nil {
		return err
	}
	if err := v.SetInstalled(m.Version); err != nil {
		return err
	}
	v.installed, v.installedSHA, v.installedExpires = append([]byte(nil), manifest...), sum, m.Expires
	return nil
}

// verifyInstalled verifies an installed manifest envelope under the trusted root's release role
// and returns the manifest and the SHA-256 of its payload. Its expiry is not checked: the
// device runs it whether or not it has expired (Fetch reports an expired one, ErrStale).
func (v *Verifier) verifyInstalled(manifest []byte) (*Manifest, string, error) {
	env, err := ParseEnvelope(manifest)
	if err != nil {
		return nil, "", err
	}
	payload, err := v.root.verifyRole(env, RoleRelease, TypeManifest)
	if err != nil {
		return nil, "", err
	}
	m, err := decodeManifest(payload)
	if err != nil {
		return nil, "", err
	}
	if m.Model != v.model {
		return nil, "", fmt.Errorf("%w: manifest is for model %q, device runs %q", ErrMixAndMatch, m.Model, v.model)
	}
	return m, sha256Hex(payload), nil
}

// Skip makes Fetch treat a pointer naming r as nothing new: the device holds that release as a
// candidate or has refused it. A pointer naming the same version with another manifest is
// fetched (see ReleaseRef).
func (v *Verifier) Skip(r ReleaseRef) { v.skip[r] = true }

// Unskip undoes Skip: the device dropped the candidate r (a root update retired the key that
// signed it) or forgot the refusal.
func (v *Verifier) Unskip(r ReleaseRef) { delete(v.skip, r) }

// skipped reports whether the release l names was passed to Skip.
func (v *Verifier) skipped(l *Latest) bool {
	return v.skip[ReleaseRef{Version: l.Version, ManifestSHA256: l.ManifestSHA256}] || v.skip[ReleaseRef{Version: l.Version}]
}

// FloorReset reports whether a root rotation reset the floor since the Verifier was made: the
// release keys that signed the installed release are no longer trusted, so any release newer
// than 0 signed by the current keys is accepted.
func (v *Verifier) FloorReset() bool { return v.floorSet }

// UpdateRoot verifies data as the root following the trusted one and, if it verifies, trusts it.
func (v *Verifier) UpdateRoot(data []byte) error {
	next, err := v.root.VerifyNext(data)
	if err != nil {
		return err
	}
	v.root, v.rootEnv = next, append([]byte(nil), data...)
	v.checkFloor()
	return nil
}

// checkFloor resets the floor when the installed manifest no longer verifies under the
// trusted root's release role.
func (v *Verifier) checkFloor() {
	if v.installed == nil {
		return
	}
	m, sum, err := v.verifyInstalled(v.installed)
	if err != nil {
		v.version, v.installed, v.installedSHA, v.installedExpires, v.floorSet = 0, nil, "", time.Time{}, true
		return
	}
	v.installedSHA, v.installedExpires = sum, m.Expires
}

// checkInstalled refuses to call the device up to date while the manifest of the release it
// runs has expired. Without it a holder of the timestamp key alone could keep signing
// pointers to the installed release (or to one the device skips), and the device would report
// nothing wrong until its root expired. Manifests are signed for months and replaced by a new
// version before they expire (see OutboxConfig.Expiry), so a device sees this only when
// releases stopped: it keeps running its model, and the error tells its operator.
func (v *Verifier) checkInstalled(now time.Time) error {
	if v.installed == nil || now.Before(v.installedExpires) {
		return nil
	}
	return fmt.Errorf("%w: %w: manifest of installed %s v%d expired at %s and the store offers nothing newer",
		ErrStale, ErrExpired, v.model, v.version, v.installedExpires.Format(time.RFC3339))
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
// version verifies (the caller compares versions); one to an older version is ErrRollback; one
// that expires more than MaxPointerLifetime after now is ErrLifetime.
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
	if err := l.checkLifetime(now); err != nil {
		return nil, err
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
	k, err := v.checkKeyEpoch(data, now)
	if err != nil {
		return nil, err
	}
	if err := k.checkPublicKey(publicKey); err != nil {
		return nil, err
	}
	v.keyEpoch = k.Epoch
	return k, nil
}

// checkKeyEpoch is VerifyKeyEpoch without the collective key, and without raising the floor.
func (v *Verifier) checkKeyEpoch(data []byte, now time.Time) (*KeyEpoch, error) {
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
	return k, nil
}

// checkPublicKey checks a collective public key against the size and hash k signs.
func (k *KeyEpoch) checkPublicKey(publicKey []byte) error {
	if int64(len(publicKey)) != k.PublicKeySize || sha256Hex(publicKey) != k.PublicKeySHA256 {
		return fmt.Errorf("%w: collective public key of epoch %d does not match the signed sha256/size", ErrHashMismatch, k.Epoch)
	}
	return nil
}
