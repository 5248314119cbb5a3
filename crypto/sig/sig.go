// Package sig signs and verifies with ML-DSA-65 (FIPS 204), the post-quantum signature scheme
// that Vigil's root of trust, release keys and audit checkpoints use.
//
// A key is named by its KeyID, the hex SHA-256 of its raw FIPS 204 public key encoding, so that
// documents can list keys by ID and a verifier can find the key for a signature without trying
// them all. Private keys are kept as the 32-byte FIPS 204 seed, the form that RFC 9881
// (ML-DSA in X.509) recommends; key files use the RFC 9881 PKCS #8 and SubjectPublicKeyInfo
// encodings in PEM, so they are byte-compatible with other ML-DSA implementations (see
// encoding.go). Offline keys are kept encrypted under a passphrase (scrypt and
// XChaCha20-Poly1305, see keyenc.go).
//
// Signing is hedged (FIPS 204 randomized signing with fresh randomness), which is the FIPS 204
// default and keeps a signer safe against fault attacks on deterministic signing; verification
// does not depend on the choice.
package sig

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Algorithm is the name of the only signature algorithm this package implements.
const Algorithm = "ML-DSA-65"

// Sizes of ML-DSA-65 encodings in bytes (FIPS 204, table 2).
const (
	SeedSize      = mldsa65.SeedSize
	PublicKeySize = mldsa65.PublicKeySize
	SignatureSize = mldsa65.SignatureSize
	// MaxContextSize is the longest FIPS 204 context string.
	MaxContextSize = 255
)

// Errors callers branch on.
var (
	// ErrBadSignature means a signature did not verify under the given key.
	ErrBadSignature = errors.New("sig: signature does not verify")
	// ErrBadKey means a key encoding was malformed.
	ErrBadKey = errors.New("sig: malformed key")
)

// KeyID names a public key: the lowercase hex SHA-256 of its raw FIPS 204 encoding.
type KeyID string

// Valid reports whether id has the form of a KeyID (64 lowercase hex digits).
func (id KeyID) Valid() bool {
	if len(id) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Short returns the first 12 hex digits of id, enough to tell keys apart in messages.
func (id KeyID) Short() string {
	if len(id) > 12 {
		return string(id[:12])
	}
	return string(id)
}

// PublicKey is an ML-DSA-65 public key.
type PublicKey struct {
	key mldsa65.PublicKey
	raw []byte
	id  KeyID
}

// PrivateKey is an ML-DSA-65 private key, kept with its seed and its public key.
type PrivateKey struct {
	key  *mldsa65.PrivateKey
	seed [SeedSize]byte
	pub  *PublicKey
}

// GenerateKey returns a new private key whose seed is read from random, or from crypto/rand if
// random is nil.
func GenerateKey(random io.Reader) (*PrivateKey, error) {
	if random == nil {
		random = rand.Reader
	}
	var seed [SeedSize]byte
	if _, err := io.ReadFull(random, seed[:]); err != nil {
		return nil, fmt.Errorf("sig: reading seed: %w", err)
	}
	return NewKeyFromSeed(seed[:])
}

// NewKeyFromSeed derives the private key of a 32-byte FIPS 204 seed (ML-DSA.KeyGen_internal).
func NewKeyFromSeed(seed []byte) (*PrivateKey, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("%w: seed is %d bytes, want %d", ErrBadKey, len(seed), SeedSize)
	}
	k := &PrivateKey{}
	copy(k.seed[:], seed)
	pk, sk := mldsa65.NewKeyFromSeed(&k.seed)
	k.key = sk
	k.pub = newPublicKey(pk)
	return k, nil
}

func newPublicKey(pk *mldsa65.PublicKey) *PublicKey {
	raw := pk.Bytes()
	sum := sha256.Sum256(raw)
	return &PublicKey{key: *pk, raw: raw, id: KeyID(hex.EncodeToString(sum[:]))}
}

// ParsePublicKey decodes a raw FIPS 204 public key of PublicKeySize bytes.
func ParsePublicKey(raw []byte) (*PublicKey, error) {
	if len(raw) != PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadKey, len(raw), PublicKeySize)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	return newPublicKey(&pk), nil
}

// Public returns the public key of k.
func (k *PrivateKey) Public() *PublicKey { return k.pub }

// ID returns the KeyID of k's public key.
func (k *PrivateKey) ID() KeyID { return k.pub.id }

// Seed returns a copy of the 32-byte seed k was derived from.
func (k *PrivateKey) Seed() []byte { return append([]byte(nil), k.seed[:]...) }

// Sign returns a hedged ML-DSA-65 signature of message under the FIPS 204 context string
// context (at most MaxContextSize bytes; "" is the empty context).
func (k *PrivateKey) Sign(message []byte, context string) ([]byte, error) {
	return k.sign(message, context, true)
}

func (k *PrivateKey) sign(message []byte, context string, randomized bool) ([]byte, error) {
	if len(context) > MaxContextSize {
		return nil, fmt.Errorf("sig: context is %d bytes, at most %d allowed", len(context), MaxContextSize)
	}
	s := make([]byte, SignatureSize)
	if err := mldsa65.SignTo(k.key, message, []byte(context), randomized, s); err != nil {
		return nil, fmt.Errorf("sig: %w", err)
	}
	return s, nil
}

// ID returns the KeyID of pk.
func (pk *PublicKey) ID() KeyID { return pk.id }

// Bytes returns a copy of the raw FIPS 204 encoding of pk.
func (pk *PublicKey) Bytes() []byte { return append([]byte(nil), pk.raw...) }

// Equal reports whether pk and other are the same key.
func (pk *PublicKey) Equal(other *PublicKey) bool { return other != nil && pk.id == other.id }

// Verify checks signature on message under context; it returns nil or an error wrapping
// ErrBadSignature.
func (pk *PublicKey) Verify(message, signature []byte, context string) error {
	if len(signature) != SignatureSize {
		return fmt.Errorf("%w: key %s: signature is %d bytes, want %d", ErrBadSignature, pk.id.Short(), len(signature), SignatureSize)
	}
	if len(context) > MaxContextSize || !mldsa65.Verify(&pk.key, message, []byte(context), signature) {
		return fmt.Errorf("%w: key %s", ErrBadSignature, pk.id.Short())
	}
	return nil
}
