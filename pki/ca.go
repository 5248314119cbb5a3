package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Files of a CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// CA is the deployment's certificate authority. It signs device certificates at enrolment and
// coordinator and trustee certificates for operators. It is safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// NewCA creates a CA with a fresh ECDSA P-256 key and a self-signed certificate named name,
// valid from now for validity (zero: DefaultCAValidity). It may sign only end-entity
// certificates (path length 0).
func NewCA(name string, validity time.Duration, now time.Time) (*CA, error) {
	if name == "" {
		return nil, errors.New("pki: CA name is empty")
	}
	if validity == 0 {
		validity = DefaultCAValidity
	}
	if err := checkValidity(validity); err != nil {
		return nil, err
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-Backdate).UTC().Truncate(time.Second),
		NotAfter:              now.Add(validity).UTC().Truncate(time.Second),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &CA{cert: cert, key: key}, nil
}

// GenerateKey returns a fresh ECDSA P-256 key, the key type of every identity Vigil creates.
func GenerateKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	return k, nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a pool holding only the CA certificate, for verifying peers.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Fingerprint returns the SHA-256 of a certificate's DER as "sha256:<hex>", the form operators
// compare when they hand the CA certificate to a device out of band.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Save writes the CA certificate (mode 0644) and key (mode 0600) into dir, creating dir with
// mode 0700. It refuses to overwrite an existing CA.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := MarshalPrivateKeyPEM(ca.key)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, 0o600, true); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, CACertFile), MarshalCertificatesPEM(ca.cert), 0o644, true)
}

// LoadCA reads a CA written by Save and checks that the key belongs to the certificate, that
// the certificate is a CA certificate, and that the key file is private to its owner.
func LoadCA(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	data, _, err := readFileLimited(certPath, MaxPEMFileBytes)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", certPath, err)
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("%s: %w: holds %d certificates, want 1", certPath, ErrBadCertificate, len(certs))
	}
	cert := certs[0]
	if !cert.IsCA || !cert.BasicConstraintsValid || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s: %w: not a CA certificate", certPath, ErrBadCertificate)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("%s: %w: not self-signed: %w", certPath, ErrBadCertificate, err)
	}
	key, err := readPrivateKey(keyPath)
	if err != nil {
		return nil, err
	}
	if !samePublicKey(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("%s: %w: the key does not belong to %s", keyPath, ErrBadCertificate, certPath)
	}
	return &CA{cert: cert, key: key}, nil
}

func readPrivateKey(path string) (crypto.Signer, error) {
	data, info, err := readFileLimited(path, MaxPEMFileBytes)
	if err != nil {
		return nil, err
	}
	if err := checkPrivate(path, info); err != nil {
		return nil, err
	}
	key, err := ParsePrivateKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return key, nil
}

func samePublicKey(a, b crypto.PublicKey) bool {
	ader, err1 := x509.MarshalPKIXPublicKey(a)
	bder, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(ader, bder)
}

// randomSerial returns a uniformly random positive serial number of at most 128 bits, as RFC
// 5280 (at most 20 octets) and the CA/Browser Forum (at least 64 random bits) ask.
func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func checkValidity(d time.Duration) error {
	if d < MinValidity || d > MaxValidity {
		return fmt.Errorf("pki: validity %v is outside [%v, %v]", d, MinValidity, MaxValidity)
	}
	return nil
}
