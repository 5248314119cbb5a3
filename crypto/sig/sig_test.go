package sig

import (
	"bytes"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t testing.TB) *PrivateKey {
	t.Helper()
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignVerify(t *testing.T) {
	k, other := mustKey(t), mustKey(t)
	msg := []byte("release manifest")
	s, err := k.Sign(msg, "vigil-test")
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Public().Verify(msg, s, "vigil-test"); err != nil {
		t.Fatalf("valid signature refused: %v", err)
	}
	flipped := append([]byte(nil), s...)
	flipped[100] ^= 1
	tampered := append([]byte(nil), msg...)
	tampered[0] ^= 1
	for _, tc := range []struct {
		name string
		pk   *PublicKey
		msg  []byte
		sig  []byte
		ctx  string
	}{
		{"tampered message", k.Public(), tampered, s, "vigil-test"},
		{"tampered signature", k.Public(), msg, flipped, "vigil-test"},
		{"wrong key", other.Public(), msg, s, "vigil-test"},
		{"wrong context", k.Public(), msg, s, "vigil-other"},
		{"short signature", k.Public(), msg, s[:len(s)-1], "vigil-test"},
		{"empty signature", k.Public(), msg, nil, "vigil-test"},
		{"long context", k.Public(), msg, s, strings.Repeat("x", MaxContextSize+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.pk.Verify(tc.msg, tc.sig, tc.ctx); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("got %v, want ErrBadSignature", err)
			}
		})
	}
	if _, err := k.Sign(msg, strings.Repeat("x", MaxContextSize+1)); err == nil {
		t.Error("signing with a 256-byte context succeeded")
	}
}

func TestHedgedSignaturesDiffer(t *testing.T) {
	k := mustKey(t)
	a, _ := k.Sign([]byte("m"), "")
	b, _ := k.Sign([]byte("m"), "")
	if bytes.Equal(a, b) {
		t.Fatal("two hedged signatures are equal: signing is not randomized")
	}
}

func TestKeyID(t *testing.T) {
	k := mustKey(t)
	if !k.ID().Valid() || k.ID() != k.Public().ID() {
		t.Fatalf("bad key id %q", k.ID())
	}
	pk, err := ParsePublicKey(k.Public().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if pk.ID() != k.ID() {
		t.Fatal("key id changes across encoding")
	}
	for _, bad := range []KeyID{"", "ABC", KeyID(strings.Repeat("A", 64)), KeyID(strings.Repeat("a", 63))} {
		if bad.Valid() {
			t.Errorf("%q reported valid", bad)
		}
	}
}

func TestParseRejects(t *testing.T) {
	k := mustKey(t)
	pub := MarshalPublicKey(k.Public())
	priv := MarshalPrivateKey(k)
	wrongOID := MarshalPrivateKeyDER(k)
	wrongOID[16] = 0x11 // id-ml-dsa-44
	for _, tc := range []struct {
		name  string
		parse func([]byte) error
		data  []byte
	}{
		{"public: private PEM", parsePub, priv},
		{"private: public PEM", parsePriv, pub},
		{"public: trailing text", parsePub, append(append([]byte(nil), pub...), "x"...)},
		{"public: leading text", parsePub, append([]byte("x\n"), pub...)},
		{"public: CRLF", parsePub, bytes.ReplaceAll(pub, []byte("\n"), []byte("\r\n"))},
		{"public: header", parsePub, bytes.Replace(pub, []byte("KEY-----\n"), []byte("KEY-----\nProc-Type: 4,ENCRYPTED\n\n"), 1)},
		{"public: two blocks", parsePub, append(append([]byte(nil), pub...), pub...)},
		{"public: raw bytes", parsePub, k.Public().Bytes()},
		{"public: empty", parsePub, nil},
		{"private: ML-DSA-44 OID", parsePriv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: wrongOID})},
		{"private: expanded form", parsePriv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: append(MarshalPrivateKeyDER(k), 0)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.parse(tc.data); !errors.Is(err, ErrBadKey) {
				t.Fatalf("got %v, want ErrBadKey", err)
			}
		})
	}
	if _, err := ParsePublicKey(make([]byte, PublicKeySize-1)); !errors.Is(err, ErrBadKey) {
		t.Errorf("short raw public key: %v", err)
	}
	if _, err := NewKeyFromSeed(make([]byte, 31)); !errors.Is(err, ErrBadKey) {
		t.Errorf("short seed: %v", err)
	}
}

func parsePub(b []byte) error  { _, err := ParsePublicKeyPEM(b); return err }
func parsePriv(b []byte) error { _, err := ParsePrivateKeyPEM(b); return err }

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k := mustKey(t)
	kp, pp := filepath.Join(dir, "a.key"), filepath.Join(dir, "a.pub")
	if err := WritePrivateKeyFile(kp, k); err != nil {
		t.Fatal(err)
	}
	if err := WritePublicKeyFile(pp, k.Public()); err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateKeyFile(kp, mustKey(t)); err == nil {
		t.Fatal("existing private key was overwritten")
	}
	info, err := os.Stat(kp)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %04o, want 0600", info.Mode().Perm())
	}
	k2, err := ReadPrivateKeyFile(kp)
	if err != nil {
		t.Fatal(err)
	}
	pk2, err := ReadPublicKeyFile(pp)
	if err != nil {
		t.Fatal(err)
	}
	if k2.ID() != k.ID() || pk2.ID() != k.ID() {
		t.Fatal("key files do not round-trip")
	}
	if err := os.Chmod(kp, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateKeyFile(kp); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable private key accepted: %v", err)
	}
}

func BenchmarkVerify(b *testing.B) {
	k := mustKey(b)
	msg := make([]byte, 512)
	s, _ := k.Sign(msg, "")
	pk := k.Public()
	b.ReportAllocs()
	for b.Loop() {
		if err := pk.Verify(msg, s, ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	k := mustKey(b)
	msg := make([]byte, 512)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Sign(msg, ""); err != nil {
			b.Fatal(err)
		}
	}
}
