package release

import (
	"fmt"
	"time"
)

// KeyEpoch approves the collective homomorphic-encryption public key of one key epoch. It is
// signed by a threshold of the trustees themselves (the root's trustees role), each after its
// own test decryption, never by a key the coordinator holds; the key itself is stored beside it
// and checked by hash and size.
type KeyEpoch struct {
	Created         time.Time `json:"created"`
	Epoch           uint64    `json:"epoch"`
	Expires         time.Time `json:"expires"`
	Params          string    `json:"params"` // ID of the HE parameter set
	PublicKeySHA256 string    `json:"public_key_sha256"`
	PublicKeySize   int64     `json:"public_key_size"`
}

func (k *KeyEpoch) payloadType() string { return TypeKeyEpoch }

func (k *KeyEpoch) validate() error {
	if k.Epoch == 0 {
		return fmt.Errorf("%w: key epoch must be at least 1", ErrMalformed)
	}
	if err := validName("key epoch params", k.Params); err != nil {
		return err
	}
	if err := validSHA256("key epoch public_key_sha256", k.PublicKeySHA256); err != nil {
		return err
	}
	if k.PublicKeySize <= 0 {
		return fmt.Errorf("%w: key epoch public_key_size must be positive", ErrMalformed)
	}
	if err := checkTime("key epoch created", k.Created); err != nil {
		return err
	}
	if err := checkTime("key epoch expires", k.Expires); err != nil {
		return err
	}
	if !k.Expires.After(k.Created) {
		return fmt.Errorf("%w: key epoch expires before it is created", ErrMalformed)
	}
	return nil
}

// NewKeyEpoch describes publicKey (the serialised collective public key) as epoch.
func NewKeyEpoch(epoch uint64, params string, publicKey []byte, created, expires time.Time) *KeyEpoch {
	return &KeyEpoch{
		Created:         canonicalTime(created),
		Epoch:           epoch,
		Expires:         canonicalTime(expires),
		Params:          params,
		PublicKeySHA256: sha256Hex(publicKey),
		PublicKeySize:   int64(len(publicKey)),
	}
}

func decodeKeyEpoch(payload []byte) (*KeyEpoch, error) {
	var k KeyEpoch
	if err := unmarshalStrict(payload, &k, "key epoch"); err != nil {
		return nil, err
	}
	if err := k.validate(); err != nil {
		return nil, err
	}
	return &k, nil
}
