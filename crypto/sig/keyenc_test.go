package sig

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestEncryptedKeyRoundTrip(t *testing.T) {
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := encryptPrivateKey(k, []byte("correct horse"), minScryptLogN)
	if err != nil {
		t.Fatal(err)
	}
	if !IsEncryptedKey(data) || bytes.Contains(data, MarshalPrivateKey(k)) {
		t.Fatal("not an encrypted key")
	}
	got, err := DecryptPrivateKey(data, []byte("correct horse"))
	if err != nil || got.ID() != k.ID() {
		t.Fatalf("decrypt: %v", err)
	}
	block, _ := pem.Decode(data)
	for _, tc := range []struct {
		name string
		data []byte
		pass string
		want error
	}{
		{"wrong passphrase", data, "correct horse!", ErrPassphrase},
		{"flipped ciphertext bit", flip(block, encHeaderLen+3), "correct horse", ErrPassphrase},
		{"lowered cost", setByte(block, 1, minScryptLogN+1), "correct horse", ErrPassphrase},
		{"cost out of range", setByte(block, 1, 30), "correct horse", ErrBadKey},
		{"other version", setByte(block, 0, 2), "correct horse", ErrBadKey},
		{"plain key", MarshalPrivateKey(k), "correct horse", ErrBadKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecryptPrivateKey(tc.data, []byte(tc.pass)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Files: the plain reader refuses the encrypted file and names the need for a passphrase.
	path := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateKeyFile(path); !errors.Is(err, ErrEncrypted) {
		t.Fatalf("ReadPrivateKeyFile on an encrypted key: %v", err)
	}
	got, err = ReadPrivateKeyFileWith(path, func() ([]byte, error) { return []byte("correct horse"), nil })
	if err != nil || got.ID() != k.ID() {
		t.Fatalf("ReadPrivateKeyFileWith: %v", err)
	}
}

func flip(b *pem.Block, i int) []byte {
	c := append([]byte(nil), b.Bytes...)
	c[i] ^= 1
	return pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: c})
}

func setByte(b *pem.Block, i int, v byte) []byte {
	c := append([]byte(nil), b.Bytes...)
	c[i] = v
	return pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: c})
}
