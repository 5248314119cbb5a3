package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
)

// decodePEM returns the DER contents of data, which must hold 1 to max PEM blocks of type typ
// without headers, separated only by white space. Text before, between or after the blocks, other
// block types and headers are refused: these files are written by this package, so anything else
// is damage or tampering.
func decodePEM(data []byte, typ string, max int) ([][]byte, error) {
	if len(data) > MaxPEMFileBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadPEM, len(data), MaxPEMFileBytes)
	}
	var out [][]byte
	rest := data
	for {
		rest = bytes.TrimLeft(rest, " \t\r\n")
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte("-----BEGIN ")) {
			return nil, fmt.Errorf("%w: text outside a PEM block", ErrBadPEM)
		}
		if len(out) == max {
			return nil, fmt.Errorf("%w: more than %d %s blocks", ErrBadPEM, max, typ)
		}
		var b *pem.Block
		b, rest = pem.Decode(rest)
		switch {
		case b == nil:
			return nil, fmt.Errorf("%w: malformed PEM block", ErrBadPEM)
		case b.Type != typ:
			return nil, fmt.Errorf("%w: block type %q, want %q", ErrBadPEM, b.Type, typ)
		case len(b.Headers) != 0:
			return nil, fmt.Errorf("%w: %s block has headers", ErrBadPEM, typ)
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %s block", ErrBadPEM, typ)
	}
	return out, nil
}

// ParseCertificatesPEM parses 1 to MaxChainCertificates certificates in strict PEM.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	ders, err := decodePEM(data, pemCertificate, MaxChainCertificates)
	if err != nil {
		return nil, err
	}
	certs := make([]*x509.Certificate, len(ders))
	for i, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate %d: %w", ErrBadPEM, i+1, err)
		}
		certs[i] = c
	}
	return certs, nil
}

// MarshalCertificatesPEM encodes certificates as PEM, in order.
func MarshalCertificatesPEM(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		pem.Encode(&buf, &pem.Block{Type: pemCertificate, Bytes: c.Raw}) // writes to memory: cannot fail
	}
	return buf.Bytes()
}

// ParsePrivateKeyPEM parses one PKCS#8 private key in strict PEM. The key must be of a type
// checkPublicKey accepts and its encoding must be the canonical one MarshalPKCS8PrivateKey
// writes.
func ParsePrivateKeyPEM(data []byte) (crypto.Signer, error) {
	ders, err := decodePEM(data, pemPrivateKey, 1)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(ders[0])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%w: key of type %T cannot sign", ErrBadPEM, k)
	}
	if err := checkPublicKey(signer.Public()); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadPEM, err)
	}
	again, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil || !bytes.Equal(again, ders[0]) {
		return nil, fmt.Errorf("%w: private key is not canonically encoded", ErrBadPEM)
	}
	return signer, nil
}

// MarshalPrivateKeyPEM encodes key as PKCS#8 PEM.
func MarshalPrivateKeyPEM(key crypto.Signer) ([]byte, error) {
	if err := checkPublicKey(key.Public()); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

// checkPublicKey accepts the key types Vigil uses: ECDSA P-256 (what this package generates),
// ECDSA P-384 and Ed25519. RSA and other curves are refused; nothing in a closed fleet needs
// them.
func checkPublicKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("pki: ECDSA key on curve %s; want P-256 or P-384", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("pki: unsupported key type %T; want ECDSA P-256, P-384 or Ed25519", pub)
}
