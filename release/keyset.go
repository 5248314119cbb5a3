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
	return NewKeySetWith(rnd, expires, KeySetOptions{Trustees: trustees, TrusteeThreshold: threshold})
}

// KeySetOptions are the keys a key set takes from the parties that hold them instead of
// generating them.
type KeySetOptions struct {
	// Trustees are the ceremony's trustees' keys (he.Identity.SigningKey), TrusteeThreshold of
	// which approve a key epoch. Required.
	Trustees         []*sig.PrivateKey
	TrusteeThreshold int
	// Enrolment, if set, is the enrolment authority's public key: the root's enrolment role
	// names it and the key set holds no enrolment private key (KeySet.Enrolment is nil), as
	// an organisation whose authority runs apart from the coordinator needs.
	Enrolment *sig.PublicKey
}

// NewKeySetWith generates the keys opts does not give, from rnd (a cryptographic source), and
// signs root version 1, valid until expires.
func NewKeySetWith(rnd io.Reader, expires time.Time, opts KeySetOptions) (*KeySet, error) {
	if len(opts.Trustees) == 0 {
		return nil, fmt.Errorf("release: a key set needs the trustees' keys")
	}
	ks := KeySet{Trustees: opts.Trustees, TrusteeThreshold: opts.TrusteeThreshold}
	generate := []**sig.PrivateKey{&ks.Root, &ks.Release, &ks.Timestamp, &ks.Privacy}
	if opts.Enrolment == nil {
		generate = append(generate, &ks.Enrolment)
	}
	for _, k := range generate {
		key, err := sig.GenerateKey(rnd)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		*k = key
	}
	one := func(k *sig.PublicKey) RoleSpec { return RoleSpec{Keys: []*sig.PublicKey{k}, Threshold: 1} }
	enrol := opts.Enrolment
	if enrol == nil {
		enrol = ks.Enrolment.Public()
	}
	tspec := RoleSpec{Threshold: opts.TrusteeThreshold}
	for _, k := range opts.Trustees {
		tspec.Keys = append(tspec.Keys, k.Public())
	}
	root, err := NewRoot(1, expires, RootRoles{
		Root: one(ks.Root.Public()), Release: one(ks.Release.Public()), Timestamp: one(ks.Timestamp.Public()),
		Trustees: tspec, Enrolment: one(enrol), Privacy: one(ks.Privacy.Public()),
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
