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
// offline.
type KeySet struct {
	Root, Release, Timestamp *sig.PrivateKey
	// RootEnvelope is root version 1, signed by the root key: what devices pin.
	RootEnvelope []byte
}

// NewKeySet generates the three keys from rnd (a cryptographic source) and signs root version
// 1, valid until expires.
func NewKeySet(rnd io.Reader, expires time.Time) (*KeySet, error) {
	var ks KeySet
	for _, k := range []**sig.PrivateKey{&ks.Root, &ks.Release, &ks.Timestamp} {
		key, err := sig.GenerateKey(rnd)
		if err != nil {
			return nil, fmt.Errorf("release: %w", err)
		}
		*k = key
	}
	one := func(k *sig.PrivateKey) RoleSpec { return RoleSpec{Keys: []*sig.PublicKey{k.Public()}, Threshold: 1} }
	root, err := NewRoot(1, expires, one(ks.Root), one(ks.Release), one(ks.Timestamp))
	if err != nil {
		return nil, err
	}
	if ks.RootEnvelope, err = Sign(root, ks.Root); err != nil {
		return nil, err
	}
	return &ks, nil
}

// SignKeyEpoch signs, with the release key, the document approving publicKey (a key epoch's
// canonical encoding) as key epoch epoch of the HE parameters params.
func (ks *KeySet) SignKeyEpoch(epoch uint64, params string, publicKey []byte, created, expires time.Time) ([]byte, error) {
	return Sign(NewKeyEpoch(epoch, params, publicKey, created, expires), ks.Release)
}
