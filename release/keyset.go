package release

import (
	"fmt"
	"io"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
)

// KeySet is a root of trust with one key per role and its first root document, created in one
// step. The demo and tests make one on the fly; an organisation makes its keys with
// `vigil release keygen` and signs its root with `vigil release sign root`, keeping the root key
// offline, and its trustees approve key epochs with their own ceremony keys.
type KeySet struct {
	Root, Release, Timestamp *sig.PrivateKey
	// Enrolment signs device records; Privacy signs the privacy policy.
	Enrolment, Privacy *sig.PrivateKey
	// Trustees sign key epochs, TrusteeThreshold of them together. NewKeySet makes one key;
	// NewKeySetWithTrustees takes the ceremony's trustees' keys.
	Trustees         []*sig.PrivateKey
	TrusteeThreshold int
	// RootEnvelope is root version 1, signed by the root key: what devices pin.
	RootEnvelope []byte
}

// NewKeySet generates a key for every role, one trustee key among them, from rnd (a
// cryptographic source) and signs root version 1, valid until expires.
func NewKeySet(rnd io.Reader, expires time.Time) (*KeySet, error) {
	t, err := sig.GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return NewKeySetWithTrustees(rnd, expires, []*sig.PrivateKey{t}, 1)
}

// NewKeySetWithTrustees is NewKeySet with the trustees' keys given: threshold of them sign
// each key epoch.
func NewKeySetWithTrustees(rnd io.Reader, expires time.Time, trustees []*sig.PrivateKey, threshold int) (*KeySet, error) {
	ks := KeySet{Trustees: trustees, TrusteeThreshold: threshold}
	for _, k := range []**sig.PrivateKey{&ks.Root, &ks.Release, &ks.Timestamp, &ks.Enrolment, &ks.Privacy} {
		key, err := sig.GenerateKey(rnd)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		*k = key
	}
	one := func(k *sig.PrivateKey) RoleSpec { return RoleSpec{Keys: []*sig.PublicKey{k.Public()}, Threshold: 1} }
	tspec := RoleSpec{Threshold: threshold}
	for _, k := range trustees {
		tspec.Keys = append(tspec.Keys, k.Public())
	}
	root, err := NewRoot(1, expires, RootRoles{
		Root: one(ks.Root), Release: one(ks.Release), Timestamp: one(ks.Timestamp),
		Trustees: tspec, Enrolment: one(ks.Enrolment), Privacy: one(ks.Privacy),
	})
	if err != nil {
		return nil, err
	}
	if ks.RootEnvelope, err = Sign(root, ks.Root); err != nil {
		return nil, err
	}
	return &ks, nil
}

// SignKeyEpoch signs, with the trustees' keys (all of them; a threshold would do), the
// document approving publicKey (a key epoch's canonical encoding) as key epoch epoch of the HE
// parameters params. In a deployment each trustee signs on its own machine after its own test
// decryption (Cosign merges the signatures).
func (ks *KeySet) SignKeyEpoch(epoch uint64, params string, publicKey []byte, created, expires time.Time) ([]byte, error) {
	signers := make([]Signer, len(ks.Trustees))
	for i, k := range ks.Trustees {
		signers[i] = k
	}
	return Sign(NewKeyEpoch(epoch, params, publicKey, created, expires), signers...)
}

// SignPrivacyPolicy signs p with the privacy key.
func (ks *KeySet) SignPrivacyPolicy(p *PrivacyPolicy) ([]byte, error) { return Sign(p, ks.Privacy) }

// SignDeviceRecord signs d with the enrolment key.
func (ks *KeySet) SignDeviceRecord(d *DeviceRecord) ([]byte, error) { return Sign(d, ks.Enrolment) }
