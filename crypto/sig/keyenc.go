package sig

import (
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// Encrypted private key files. A key that signs offline (root, release, privacy, a trustee's)
// is kept encrypted under a passphrase, so that a copied file or a lost laptop does not give the
// key away. The format is one PEM block of type "VIGIL ENCRYPTED PRIVATE KEY", without headers,
// whose bytes are:
//
//	offset  size  field
//	0       1     format version, 1
//	1       1     scrypt log2(N)         (15..22; 17 by default: 128 MiB and about 0.4 s)
//	2       1     scrypt r               (8)
//	3       1     scrypt p               (1)
//	4       16    salt
//	20      24    XChaCha20-Poly1305 nonce
//	44      ...   XChaCha20-Poly1305 sealed PKCS #8 DER of the key (what MarshalPrivateKeyDER
//	              writes), with bytes 0..43 as associated data
//
// The key is scrypt(passphrase, salt, N, r, p, 32). The associated data binds the parameters,
// so a file whose cost was lowered does not decrypt. We use scrypt and XChaCha20-Poly1305 from
// golang.org/x/crypto, already a dependency, rather than add an encryption library.

const (
	pemEncryptedType = "VIGIL ENCRYPTED PRIVATE KEY"
	encVersion       = 1
	encHeaderLen     = 44
	// DefaultScryptLogN is the scrypt cost of EncryptPrivateKey.
	DefaultScryptLogN = 17
	minScryptLogN     = 15
	maxScryptLogN     = 22
)

// Errors of encrypted keys.
var (
	// ErrEncrypted means a key file is encrypted and no passphrase was given.
	ErrEncrypted = errors.New("sig: private key is encrypted; a passphrase is needed")
	// ErrPassphrase means the passphrase is wrong or the encrypted key is damaged.
	ErrPassphrase = errors.New("sig: wrong passphrase, or the encrypted key is damaged")
)

// EncryptPrivateKey returns k encrypted under passphrase, in the PEM form above.
func EncryptPrivateKey(k *PrivateKey, passphrase []byte) ([]byte, error) {
	return encryptPrivateKey(k, passphrase, DefaultScryptLogN)
}

func encryptPrivateKey(k *PrivateKey, passphrase []byte, logN int) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("sig: empty passphrase")
	}
	if logN < minScryptLogN || logN > maxScryptLogN {
		return nil, fmt.Errorf("sig: scrypt log2(N) %d out of range %d..%d", logN, minScryptLogN, maxScryptLogN)
	}
	hdr := make([]byte, encHeaderLen)
	hdr[0], hdr[1], hdr[2], hdr[3] = encVersion, byte(logN), 8, 1
	if _, err := rand.Read(hdr[4:]); err != nil {
		return nil, fmt.Errorf("sig: %w", err)
	}
	aead, err := keyAEAD(passphrase, hdr)
	if err != nil {
		return nil, err
	}
	out := aead.Seal(hdr, hdr[20:44], MarshalPrivateKeyDER(k), hdr)
	return pem.EncodeToMemory(&pem.Block{Type: pemEncryptedType, Bytes: out}), nil
}

func keyAEAD(passphrase, hdr []byte) (interface {
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	Seal(dst, nonce, plaintext, ad []byte) []byte
}, error) {
	key, err := scrypt.Key(passphrase, hdr[4:20], 1<<hdr[1], int(hdr[2]), int(hdr[3]), 32)
	if err != nil {
		return nil, fmt.Errorf("sig: %w", err)
	}
	return chacha20poly1305.NewX(key)
}

// IsEncryptedKey reports whether data is an encrypted private key PEM.
func IsEncryptedKey(data []byte) bool {
	block, _ := pem.Decode(data)
	return block != nil && block.Type == pemEncryptedType
}

// DecryptPrivateKey decodes exactly what EncryptPrivateKey writes.
func DecryptPrivateKey(data, passphrase []byte) (*PrivateKey, error) {
	raw, err := strictPEM(data, pemEncryptedType)
	if err != nil {
		return nil, err
	}
	if len(raw) < encHeaderLen+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: encrypted key of %d bytes, shorter than its header and tag", ErrBadKey, len(raw))
	}
	if raw[0] != encVersion {
		return nil, fmt.Errorf("%w: encrypted key version %d, want %d", ErrBadKey, raw[0], encVersion)
	}
	if raw[1] < minScryptLogN || raw[1] > maxScryptLogN || raw[2] != 8 || raw[3] != 1 {
		return nil, fmt.Errorf("%w: scrypt parameters log2(N)=%d r=%d p=%d not accepted", ErrBadKey, raw[1], raw[2], raw[3])
	}
	hdr := raw[:encHeaderLen]
	aead, err := keyAEAD(passphrase, hdr)
	if err != nil {
		return nil, err
	}
	der, err := aead.Open(nil, hdr[20:44], raw[encHeaderLen:], hdr)
	if err != nil {
		return nil, ErrPassphrase
	}
	return ParsePrivateKeyDER(der)
}

// WriteEncryptedPrivateKeyFile writes k encrypted under passphrase to a new file at path with
// mode 0600, refusing to replace an existing file.
func WriteEncryptedPrivateKeyFile(path string, k *PrivateKey, passphrase []byte) error {
	data, err := EncryptPrivateKey(k, passphrase)
	if err != nil {
		return err
	}
	return writeNew(path, data, 0o600)
}

// ReadPrivateKeyFileWith reads a private key file, plain or encrypted; for an encrypted one it
// calls passphrase (which may be nil: then ErrEncrypted). The file-mode rule of
// ReadPrivateKeyFile applies to both.
func ReadPrivateKeyFileWith(path string, passphrase func() ([]byte, error)) (*PrivateKey, error) {
	data, info, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	if err := checkKeyMode(path, info.Mode().Perm()); err != nil {
		return nil, err
	}
	if !IsEncryptedKey(data) {
		k, err := ParsePrivateKeyPEM(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return k, nil
	}
	if passphrase == nil {
		return nil, fmt.Errorf("%s: %w", path, ErrEncrypted)
	}
	pass, err := passphrase()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, err := DecryptPrivateKey(data, pass)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}
