package sig

import (
	"bytes"
	"os"
	"testing"
)

func FuzzParsePublicKeyPEM(f *testing.F) {
	seed, _ := os.ReadFile("testdata/ietf-mldsa65.pub.pem")
	f.Add(seed)
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pk, err := ParsePublicKeyPEM(data)
		if err != nil {
			return
		}
		// Strict parsing means the accepted input is exactly the canonical encoding.
		if !bytes.Equal(MarshalPublicKey(pk), data) {
			t.Fatalf("accepted non-canonical public key encoding")
		}
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	seed, _ := os.ReadFile("testdata/ietf-mldsa65.key.pem")
	f.Add(seed)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParsePrivateKeyPEM(data)
		if err != nil {
			return
		}
		if !bytes.Equal(MarshalPrivateKey(k), data) {
			t.Fatalf("accepted non-canonical private key encoding")
		}
	})
}

func FuzzVerify(f *testing.F) {
	k, err := NewKeyFromSeed(make([]byte, SeedSize))
	if err != nil {
		f.Fatal(err)
	}
	s, _ := k.sign([]byte("m"), "", false)
	f.Add([]byte("m"), s)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, msg, signature []byte) {
		// Verification of arbitrary bytes must never panic.
		_ = k.Public().Verify(msg, signature, "")
	})
}

// FuzzDecryptPrivateKey feeds arbitrary files to the encrypted-key decoder: never a panic, and
// nothing but the genuine file decrypts under the passphrase.
func FuzzDecryptPrivateKey(f *testing.F) {
	// The key comes from a fixed seed, so that every fuzzing worker process holds the same one:
	// an encryption made by another worker (with its own random salt and nonce) must decrypt to
	// it, and nothing else may decrypt at all.
	k, err := NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := encryptPrivateKey(k, []byte("pass"), minScryptLogN)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(genuine)
	f.Add(MarshalPrivateKey(k))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecryptPrivateKey(data, []byte("pass"))
		if err == nil && got.ID() != k.ID() {
			t.Fatalf("a file decrypted to key %s, not the genuine %s", got.ID().Short(), k.ID().Short())
		}
	})
}
