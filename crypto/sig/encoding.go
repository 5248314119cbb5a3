package sig

import (
	"bytes"
	"encoding/pem"
	"fmt"
)

// Key files are PEM: "PUBLIC KEY" holds an X.509 SubjectPublicKeyInfo and "PRIVATE KEY" a
// PKCS #8 OneAsymmetricKey in the seed-only form, both with the id-ml-dsa-65 algorithm
// identifier (2.16.840.1.101.3.4.3.18) and absent parameters, as RFC 9881 specifies. Both DER
// structures have a fixed size for ML-DSA-65, so they are written as a fixed prefix followed by
// the key bytes and parsed by comparing that prefix: there is no optional field, no alternative
// length form and no trailing data to be lenient about. The PEM text itself must be exactly what
// MarshalPublicKey or MarshalPrivateKey would write (no headers, 64-column lines, one block).

const (
	pemPublicType  = "PUBLIC KEY"
	pemPrivateType = "PRIVATE KEY"
)

// spkiPrefix is SEQUENCE { SEQUENCE { OID id-ml-dsa-65 }, BIT STRING (0 unused bits) ... }
// for a 1952-byte public key.
var spkiPrefix = []byte{
	0x30, 0x82, 0x07, 0xb2, // SEQUENCE, 1970 bytes
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12, // AlgorithmIdentifier
	0x03, 0x82, 0x07, 0xa1, 0x00, // BIT STRING, 1953 bytes, 0 unused bits
}

// pkcs8SeedPrefix is SEQUENCE { INTEGER 0, SEQUENCE { OID id-ml-dsa-65 },
// OCTET STRING { [0] IMPLICIT OCTET STRING (32 bytes) } }, the RFC 9881 "seed" choice.
var pkcs8SeedPrefix = []byte{
	0x30, 0x34, // SEQUENCE, 52 bytes
	0x02, 0x01, 0x00, // version v1
	0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03, 0x12, // AlgorithmIdentifier
	0x04, 0x22, // privateKey OCTET STRING, 34 bytes
	0x80, 0x20, // seed [0], 32 bytes
}

// MarshalPublicKeyDER returns the SubjectPublicKeyInfo DER encoding of pk.
func MarshalPublicKeyDER(pk *PublicKey) []byte {
	return append(append([]byte(nil), spkiPrefix...), pk.raw...)
}

// ParsePublicKeyDER decodes a SubjectPublicKeyInfo holding an ML-DSA-65 key.
func ParsePublicKeyDER(der []byte) (*PublicKey, error) {
	if len(der) != len(spkiPrefix)+PublicKeySize || !bytes.Equal(der[:len(spkiPrefix)], spkiPrefix) {
		return nil, fmt.Errorf("%w: not an ML-DSA-65 SubjectPublicKeyInfo", ErrBadKey)
	}
	return ParsePublicKey(der[len(spkiPrefix):])
}

// MarshalPrivateKeyDER returns the seed-only PKCS #8 DER encoding of k.
func MarshalPrivateKeyDER(k *PrivateKey) []byte {
	return append(append([]byte(nil), pkcs8SeedPrefix...), k.seed[:]...)
}

// ParsePrivateKeyDER decodes a seed-only PKCS #8 ML-DSA-65 private key. The expanded and
// "both" forms of RFC 9881 are refused: a seed is all a key needs, and a file that carried an
// expanded key inconsistent with its seed would be ambiguous.
func ParsePrivateKeyDER(der []byte) (*PrivateKey, error) {
	if len(der) != len(pkcs8SeedPrefix)+SeedSize || !bytes.Equal(der[:len(pkcs8SeedPrefix)], pkcs8SeedPrefix) {
		return nil, fmt.Errorf("%w: not a seed-only ML-DSA-65 PKCS #8 key", ErrBadKey)
	}
	return NewKeyFromSeed(der[len(pkcs8SeedPrefix):])
}

// MarshalPublicKey returns the PEM "PUBLIC KEY" encoding of pk.
func MarshalPublicKey(pk *PublicKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicType, Bytes: MarshalPublicKeyDER(pk)})
}

// ParsePublicKeyPEM decodes exactly what MarshalPublicKey writes.
func ParsePublicKeyPEM(data []byte) (*PublicKey, error) {
	der, err := strictPEM(data, pemPublicType)
	if err != nil {
		return nil, err
	}
	return ParsePublicKeyDER(der)
}

// MarshalPrivateKey returns the PEM "PRIVATE KEY" encoding of k.
func MarshalPrivateKey(k *PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateType, Bytes: MarshalPrivateKeyDER(k)})
}

// ParsePrivateKeyPEM decodes exactly what MarshalPrivateKey writes.
func ParsePrivateKeyPEM(data []byte) (*PrivateKey, error) {
	der, err := strictPEM(data, pemPrivateType)
	if err != nil {
		return nil, err
	}
	return ParsePrivateKeyDER(der)
}

// maxPEMBytes bounds key file reads: a public key PEM is about 2.7 KB.
const maxPEMBytes = 8 << 10

func strictPEM(data []byte, typ string) ([]byte, error) {
	if len(data) > maxPEMBytes {
		return nil, fmt.Errorf("%w: %d bytes is too long for a %s", ErrBadKey, len(data), typ)
	}
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%w: no PEM block", ErrBadKey)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("%w: PEM type %q, want %q", ErrBadKey, block.Type, typ)
	}
	if len(rest) != 0 || len(block.Headers) != 0 || !bytes.Equal(pem.EncodeToMemory(block), data) {
		return nil, fmt.Errorf("%w: %s is not in canonical PEM form (extra text, headers or line layout)", ErrBadKey, typ)
	}
	return block.Bytes, nil
}
