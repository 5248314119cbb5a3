package audit

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Signer signs checkpoints. It is the consumer-side view of a signing key, small enough that
// another implementation (an HSM, the project's crypto/sig) can stand in for MLDSA65Signer.
type Signer interface {
	// Sign returns a signature over message.
	Sign(message []byte) ([]byte, error)
	// Public returns the verifier for this signer's key.
	Public() Verifier
}

// Verifier checks checkpoint signatures under one public key.
type Verifier interface {
	// Verify reports whether signature is valid for message.
	Verify(message, signature []byte) bool
	// PublicKey returns the encoded public key; KeyIDOf of it names the key in checkpoints.
	PublicKey() []byte
}

// mldsaContext is the FIPS 204 context string of checkpoint signatures: a key used for audit
// checkpoints cannot be tricked into signing something that verifies elsewhere, and vice versa.
var mldsaContext = []byte("vigil audit checkpoint")

// MLDSA65Signer signs with an ML-DSA-65 (FIPS 204) private key, hedged (randomized) as FIPS 204
// recommends.
type MLDSA65Signer struct {
	sk  *mldsa65.PrivateKey
	pub MLDSA65Verifier
}

// MLDSA65Verifier verifies ML-DSA-65 signatures under one public key.
type MLDSA65Verifier struct {
	pk      *mldsa65.PublicKey
	encoded []byte
}

var (
	_ Signer   = (*MLDSA65Signer)(nil)
	_ Verifier = (*MLDSA65Verifier)(nil)
)

// GenerateMLDSA65 returns a new signer with a fresh key and the 32-byte seed it derives from.
// Store the seed secret: NewMLDSA65Signer(seed) recreates the same key.
func GenerateMLDSA65(random io.Reader) (*MLDSA65Signer, []byte, error) {
	if random == nil {
		random = rand.Reader
	}
	seed := make([]byte, mldsa65.SeedSize)
	if _, err := io.ReadFull(random, seed); err != nil {
		return nil, nil, fmt.Errorf("audit: generate key: %w", err)
	}
	s, err := NewMLDSA65Signer(seed)
	return s, seed, err
}

// NewMLDSA65Signer returns the signer whose key derives from a 32-byte seed.
func NewMLDSA65Signer(seed []byte) (*MLDSA65Signer, error) {
	if len(seed) != mldsa65.SeedSize {
		return nil, fmt.Errorf("audit: ML-DSA-65 seed must be %d bytes, got %d", mldsa65.SeedSize, len(seed))
	}
	var s [mldsa65.SeedSize]byte
	copy(s[:], seed)
	pk, sk := mldsa65.NewKeyFromSeed(&s)
	return &MLDSA65Signer{sk: sk, pub: MLDSA65Verifier{pk: pk, encoded: pk.Bytes()}}, nil
}

// Sign implements Signer.
func (s *MLDSA65Signer) Sign(message []byte) ([]byte, error) {
	sig := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(s.sk, message, mldsaContext, true, sig); err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return sig, nil
}

// Public implements Signer.
func (s *MLDSA65Signer) Public() Verifier { return &s.pub }

// ParseMLDSA65PublicKey returns a verifier for an encoded ML-DSA-65 public key (1,952 bytes).
func ParseMLDSA65PublicKey(encoded []byte) (*MLDSA65Verifier, error) {
	if len(encoded) != mldsa65.PublicKeySize {
		return nil, fmt.Errorf("audit: ML-DSA-65 public key must be %d bytes, got %d", mldsa65.PublicKeySize, len(encoded))
	}
	pk := new(mldsa65.PublicKey)
	if err := pk.UnmarshalBinary(encoded); err != nil {
		return nil, fmt.Errorf("audit: ML-DSA-65 public key: %w", err)
	}
	return &MLDSA65Verifier{pk: pk, encoded: append([]byte(nil), encoded...)}, nil
}

// Verify implements Verifier.
func (v *MLDSA65Verifier) Verify(message, signature []byte) bool {
	if len(signature) != mldsa65.SignatureSize {
		return false
	}
	return mldsa65.Verify(v.pk, message, mldsaContext, signature)
}

// PublicKey implements Verifier.
func (v *MLDSA65Verifier) PublicKey() []byte { return append([]byte(nil), v.encoded...) }

// errNoSigner is returned when a Log is configured without a way to sign checkpoints.
var errNoSigner = errors.New("audit: Config.Signer is required")
