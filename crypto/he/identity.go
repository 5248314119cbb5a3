package he

import (
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/vigilauth/vigil/crypto/sig"
)

// Identity is a trustee's long-term ceremony identity: an HPKE key (ML-KEM-768 + X25519
// hybrid, RFC 9180 with the hybrid KEM from crypto/hpke) that other trustees seal their Shamir
// shares to, and an ML-DSA-65 key that signs the trustee's own ceremony messages and its
// approval of the key epoch (see KeyCheck.Approve). It is secret.
type Identity struct {
	ID      string
	kem     hpke.PrivateKey
	sig     *mldsa65.PrivateKey
	sigSeed [mldsa65.SeedSize]byte
}

// PublicIdentity is what a trustee publishes before the ceremony and what the roster lists.
type PublicIdentity struct {
	ID   string
	KEM  []byte // HPKE public key (ML-KEM-768 + X25519)
	Sign []byte // ML-DSA-65 public key
}

// The ceremony's fixed algorithms.
var (
	ceremonyKEM  = hpke.MLKEM768X25519
	ceremonyKDF  = hpke.HKDFSHA256
	ceremonyAEAD = hpke.ChaCha20Poly1305
)

const (
	identityMagic       = "VGHI"
	publicIdentityMagic = "VGHP"
	identityVersion     = 1
	maxKEMKeyBytes      = 4096
)

// NewIdentity generates a fresh identity for trustee id.
func NewIdentity(id string) (*Identity, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("he: trustee %w", err)
	}
	kem, err := ceremonyKEM().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("he: HPKE key: %w", err)
	}
	ident := &Identity{ID: id, kem: kem}
	if _, err := rand.Read(ident.sigSeed[:]); err != nil {
		return nil, fmt.Errorf("he: ML-DSA seed: %w", err)
	}
	_, ident.sig = mldsa65.NewKeyFromSeed(&ident.sigSeed)
	return ident, nil
}

// valid reports whether id was made by NewIdentity or ParseIdentity.
func (id *Identity) valid() error {
	if id == nil || id.kem == nil || id.sig == nil {
		return fmt.Errorf("%w: identity not made by NewIdentity or ParseIdentity", ErrCeremony)
	}
	return nil
}

// ceremonyContextPrefix starts the FIPS 204 context strings of the ceremony's own messages
// (dealings, commitments, challenges, responses, approvals); Sign refuses them, so that only
// this package's steps, with their checks, can produce those messages.
const ceremonyContextPrefix = "vigil/he/"

// SigningSeed returns a copy of the 32-byte FIPS 204 seed of the identity's ML-DSA-65 key,
// whose public key is Public().Sign. It is what crypto/sig.NewKeyFromSeed takes, for a caller
// that signs documents of its own (the key-epoch document under the root of trust) with the
// trustee's key.
func (id *Identity) SigningSeed() []byte { return clone(id.sigSeed[:]) }

// SigningKey returns the identity's ML-DSA-65 key as a crypto/sig key, which is what the
// release package's signers are. Its public key is Public().Sign.
func (id *Identity) SigningKey() (*sig.PrivateKey, error) {
	if err := id.valid(); err != nil {
		return nil, err
	}
	return sig.NewKeyFromSeed(id.sigSeed[:])
}

// Sign returns a hedged ML-DSA-65 signature of message under the FIPS 204 context string
// context with the identity's key, verifiable with Public().Sign. It refuses the contexts of
// the ceremony's own messages (those starting "vigil/he/").
func (id *Identity) Sign(message []byte, context string) ([]byte, error) {
	if err := id.valid(); err != nil {
		return nil, err
	}
	if strings.HasPrefix(context, ceremonyContextPrefix) {
		return nil, fmt.Errorf("he: Sign: context %q is reserved for the key ceremony's own messages", context)
	}
	if len(context) > sig.MaxContextSize {
		return nil, fmt.Errorf("he: Sign: context of %d bytes, at most %d", len(context), sig.MaxContextSize)
	}
	out := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(id.sig, message, []byte(context), true, out); err != nil {
		return nil, fmt.Errorf("he: signing: %w", err)
	}
	return out, nil
}

// Public returns the public half of the identity.
func (id *Identity) Public() PublicIdentity {
	return PublicIdentity{ID: id.ID, KEM: id.kem.PublicKey().Bytes(), Sign: id.sig.Public().(*mldsa65.PublicKey).Bytes()}
}

// MarshalBinary encodes the identity: magic, version, id, HPKE private key, ML-DSA seed and a
// SHA-256 checksum.
func (id *Identity) MarshalBinary() ([]byte, error) {
	kb, err := id.kem.Bytes()
	if err != nil {
		return nil, fmt.Errorf("he: HPKE private key: %w", err)
	}
	out := append([]byte(identityMagic), identityVersion, byte(len(id.ID)))
	out = append(out, id.ID...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(kb)))
	out = append(out, kb...)
	out = append(out, id.sigSeed[:]...)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// ParseIdentity decodes an identity, strictly.
func ParseIdentity(data []byte) (*Identity, error) {
	if len(data) < sha256.Size {
		return nil, fmt.Errorf("%w: identity of %d bytes", ErrMalformed, len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:]) != 1 {
		return nil, fmt.Errorf("%w: identity checksum mismatch (file damaged?)", ErrMalformed)
	}
	r := reader{b: body, what: "identity"}
	if string(r.take(4)) != identityMagic || r.u8() != identityVersion {
		return nil, fmt.Errorf("%w: not a version %d trustee identity", ErrMalformed, identityVersion)
	}
	name := string(r.take(int(r.u8())))
	kb := r.take(int(r.u16()))
	seed := r.take(mldsa65.SeedSize)
	if err := r.finish(); err != nil {
		return nil, err
	}
	if err := validID(name); err != nil {
		return nil, fmt.Errorf("%w: trustee %v", ErrMalformed, err)
	}
	kem, err := ceremonyKEM().NewPrivateKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%w: HPKE private key: %v", ErrMalformed, err)
	}
	ident := &Identity{ID: name, kem: kem}
	copy(ident.sigSeed[:], seed)
	_, ident.sig = mldsa65.NewKeyFromSeed(&ident.sigSeed)
	return ident, nil
}

// MarshalBinary encodes the public identity.
func (pi PublicIdentity) MarshalBinary() ([]byte, error) {
	if err := pi.check(); err != nil {
		return nil, err
	}
	out := append([]byte(publicIdentityMagic), identityVersion, byte(len(pi.ID)))
	out = append(out, pi.ID...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(pi.KEM)))
	out = append(out, pi.KEM...)
	return append(out, pi.Sign...), nil
}

// ParsePublicIdentity decodes a public identity, strictly.
func ParsePublicIdentity(data []byte) (PublicIdentity, error) {
	r := reader{b: data, what: "public identity"}
	if string(r.take(4)) != publicIdentityMagic || r.u8() != identityVersion {
		return PublicIdentity{}, fmt.Errorf("%w: not a version %d public trustee identity", ErrMalformed, identityVersion)
	}
	var pi PublicIdentity
	pi.ID = string(r.take(int(r.u8())))
	pi.KEM = r.take(int(r.u16()))
	pi.Sign = r.take(mldsa65.PublicKeySize)
	if err := r.finish(); err != nil {
		return PublicIdentity{}, err
	}
	pi.KEM, pi.Sign = clone(pi.KEM), clone(pi.Sign)
	if err := pi.check(); err != nil {
		return PublicIdentity{}, err
	}
	return pi, nil
}

// Fingerprint is the hex SHA-256 of the encoding; operators compare it out of band.
func (pi PublicIdentity) Fingerprint() string {
	b, err := pi.MarshalBinary()
	if err != nil {
		return "invalid"
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (pi PublicIdentity) check() error {
	if err := validID(pi.ID); err != nil {
		return fmt.Errorf("%w: trustee %v", ErrMalformed, err)
	}
	if len(pi.KEM) > maxKEMKeyBytes {
		return fmt.Errorf("%w: trustee %q: HPKE public key of %d bytes", ErrMalformed, pi.ID, len(pi.KEM))
	}
	if _, err := ceremonyKEM().NewPublicKey(pi.KEM); err != nil {
		return fmt.Errorf("%w: trustee %q: HPKE public key: %v", ErrMalformed, pi.ID, err)
	}
	var pk mldsa65.PublicKey
	if err := pk.UnmarshalBinary(pi.Sign); err != nil {
		return fmt.Errorf("%w: trustee %q: ML-DSA public key: %v", ErrMalformed, pi.ID, err)
	}
	return nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
