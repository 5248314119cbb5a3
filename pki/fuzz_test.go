package pki

import (
	"bytes"
	"crypto/x509"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Fuzz targets for every decoder of bytes from the network or the disk. `go test` runs their
// seeds; `go test -fuzz FuzzX ./pki` explores further.

func seedCA(f *testing.F) (*CA, []byte) {
	f.Helper()
	ca, err := NewCA("seed", 0, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		f.Fatal(err)
	}
	key, _ := GenerateKey()
	csr, err := CreateCSR(key, "dev-a")
	if err != nil {
		f.Fatal(err)
	}
	return ca, csr
}

func FuzzParseCertificatesPEM(f *testing.F) {
	ca, csr := seedCA(f)
	leaf, _ := ca.IssueFromCSR(csr, Device("dev-a"), 0, time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	f.Add(MarshalCertificatesPEM(ca.Certificate()))
	f.Add(MarshalCertificatesPEM(leaf, ca.Certificate()))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("junk\n-----BEGIN CERTIFICATE-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		certs, err := ParseCertificatesPEM(data)
		if err != nil {
			return
		}
		if len(certs) == 0 || len(certs) > MaxChainCertificates {
			t.Fatalf("parsed %d certificates", len(certs))
		}
		again, err := ParseCertificatesPEM(MarshalCertificatesPEM(certs...))
		if err != nil || len(again) != len(certs) {
			t.Fatalf("re-encoded certificates do not parse: %v", err)
		}
		for i := range certs {
			if !certs[i].Equal(again[i]) {
				t.Fatalf("certificate %d changed in a round trip", i)
			}
		}
	})
}

func FuzzParsePrivateKeyPEM(f *testing.F) {
	ca, _ := seedCA(f)
	keyPEM, _ := MarshalPrivateKeyPEM(ca.key)
	f.Add(keyPEM)
	f.Add(bytes.Replace(keyPEM, []byte("PRIVATE KEY"), []byte("EC PRIVATE KEY"), 2))
	f.Add(append(bytes.Clone(keyPEM), keyPEM...))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParsePrivateKeyPEM(data)
		if err != nil {
			return
		}
		out, err := MarshalPrivateKeyPEM(key)
		if err != nil {
			t.Fatalf("a parsed key does not marshal: %v", err)
		}
		again, err := ParsePrivateKeyPEM(out)
		if err != nil || !samePublicKey(key.Public(), again.Public()) {
			t.Fatalf("key changed in a round trip: %v", err)
		}
	})
}

func FuzzParseCSR(f *testing.F) {
	_, csr := seedCA(f)
	f.Add(csr)
	bad := bytes.Clone(csr)
	bad[len(bad)-1] ^= 1
	f.Add(bad)
	f.Add(csr[:len(csr)/2])
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		req, err := ParseCSR(der)
		if err != nil {
			return
		}
		if err := req.CheckSignature(); err != nil {
			t.Fatalf("accepted a request whose signature fails: %v", err)
		}
		if err := checkPublicKey(req.PublicKey); err != nil {
			t.Fatalf("accepted a request with key %T: %v", req.PublicKey, err)
		}
	})
}

func FuzzDecodeTokenFile(f *testing.F) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	red := t0.Add(time.Minute)
	good, _ := encodeTokenFile([]tokenRecord{
		{Hash: strings.Repeat("ab", 32), DeviceID: "dev-a", Issued: t0, Expires: t0.Add(time.Hour)},
		{Hash: strings.Repeat("cd", 32), DeviceID: "dev-b", Issued: t0, Expires: t0.Add(time.Hour), Redeemed: &red},
	})
	empty, _ := encodeTokenFile(nil)
	f.Add(good)
	f.Add(empty)
	f.Add([]byte(`{"version":1,"tokens":[{"hash":"AB","device_id":"x","issued":"2026-01-01T00:00:00Z","expires":"2026-01-01T01:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"tokens":[]} {}`))
	f.Add([]byte(`{"version":2,"tokens":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := decodeTokenFile(data)
		if err != nil {
			return
		}
		once, err := encodeTokenFile(recs)
		if err != nil {
			t.Fatalf("decoded records do not encode: %v", err)
		}
		recs2, err := decodeTokenFile(once)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v", err)
		}
		twice, _ := encodeTokenFile(recs2)
		if !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not stable:\n%s\n%s", once, twice)
		}
	})
}

func FuzzDecodeRevocationFile(f *testing.F) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	good, _ := encodeRevocationFile(revocationFile{
		Identities: []RevokedIdentity{{Identity: Device("dev-a"), Revoked: t0}, {Identity: Trustee("t1"), Revoked: t0}},
		Serials:    []RevokedSerial{{Serial: new(big.Int).Lsh(big.NewInt(1), 127), Revoked: t0}},
	})
	empty, _ := encodeRevocationFile(revocationFile{})
	f.Add(good)
	f.Add(empty)
	f.Add([]byte(`{"version":1,"identities":[{"identity":"spiffe://vigil/device/a","revoked":"2026-01-01T00:00:00Z"}],"serials":[{"serial":-1,"revoked":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"identities":[{"identity":"spiffe://vigil/admin/a","revoked":"2026-01-01T00:00:00Z"}],"serials":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		rf, err := decodeRevocationFile(data)
		if err != nil {
			return
		}
		once, err := encodeRevocationFile(rf)
		if err != nil {
			t.Fatalf("decoded list does not encode: %v", err)
		}
		rf2, err := decodeRevocationFile(once)
		if err != nil {
			t.Fatalf("re-encoded list does not decode: %v", err)
		}
		twice, _ := encodeRevocationFile(rf2)
		if !bytes.Equal(once, twice) {
			t.Fatalf("encoding is not stable:\n%s\n%s", once, twice)
		}
	})
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{"spiffe://vigil/device/dev-a", "spiffe://vigil/trustee/t.1", "spiffe://vigil/device/a/b", "spiffe://vigil/device/%41", "spiffe://x@vigil/device/a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseIdentity(s)
		if err != nil {
			return
		}
		if id.String() != s {
			t.Fatalf("accepted %q, which is not canonical (%q)", s, id.String())
		}
		// The same text as a certificate's URI name gives the same identity.
		u := id.URI()
		got, err := IdentityOf(&x509.Certificate{URIs: []*url.URL{u}})
		if err != nil || got != id {
			t.Fatalf("as a certificate name: %v, %v", got, err)
		}
	})
}

func FuzzTokenHash(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB") // non-zero padding bits
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		h, err := tokenHash(token)
		if err != nil {
			return
		}
		if len(token) != 43 || len(h) != 64 {
			t.Fatalf("accepted token %q (hash %q)", token, h)
		}
	})
}
