package pki

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/vigilauth/vigil/internal/atomicfile"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Files of a credentials directory.
const (
	KeyFile   = "key.pem"
	CertFile  = "cert.pem"
	RootsFile = "ca.pem"
)

// Credentials are what a device, coordinator or trustee presents and trusts: its private key,
// its certificate chain (leaf first) and the CA certificates it verifies peers against.
type Credentials struct {
	Key   crypto.Signer
	Chain []*x509.Certificate
	Roots []*x509.Certificate
}

// Leaf returns the holder's own certificate, or nil.
func (c Credentials) Leaf() *x509.Certificate {
	if len(c.Chain) == 0 {
		return nil
	}
	return c.Chain[0]
}

// Identity returns the identity the leaf certificate names.
func (c Credentials) Identity() (Identity, error) { return IdentityOf(c.Leaf()) }

// TLSCertificate returns the key and chain for a tls.Config.
func (c Credentials) TLSCertificate() tls.Certificate {
	tc := tls.Certificate{PrivateKey: c.Key, Leaf: c.Leaf()}
	for _, cert := range c.Chain {
		tc.Certificate = append(tc.Certificate, cert.Raw)
	}
	return tc
}

// RootPool returns the trusted CA certificates as a pool.
func (c Credentials) RootPool() *x509.CertPool {
	p := x509.NewCertPool()
	for _, r := range c.Roots {
		p.AddCert(r)
	}
	return p
}

// Verify checks that the key belongs to the leaf, that the leaf chains to the roots and is valid
// at now, and that it names a valid identity, which it returns.
func (c Credentials) Verify(now time.Time) (Identity, error) {
	leaf := c.Leaf()
	switch {
	case c.Key == nil || leaf == nil:
		return Identity{}, fmt.Errorf("%w: credentials lack a key or a certificate", ErrBadCertificate)
	case len(c.Roots) == 0:
		return Identity{}, fmt.Errorf("%w: credentials trust no CA", ErrBadCertificate)
	case !samePublicKey(c.Key.Public(), leaf.PublicKey):
		return Identity{}, fmt.Errorf("%w: the key does not belong to the certificate", ErrBadCertificate)
	}
	inter := x509.NewCertPool()
	for _, cert := range c.Chain[1:] {
		inter.AddCert(cert)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots: c.RootPool(), Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	return IdentityOf(leaf)
}

// AcceptEnrolment builds a device's credentials from its key and the coordinator's enrolment
// answer (certificate and CA certificates, DER), and checks them: the certificate must be for
// key, name want, and chain at now to the returned CA, which must be one the device already
// trusted to reach the coordinator (bootstrap).
//
// A device whose clock runs slow would find its fresh certificate not yet valid, enrol again
// and again, and never hold one. Its own clock cannot judge a certificate that the CA made a
// moment ago and sent over the connection it trusts, so the chain is checked at the later of
// now and the certificate's NotBefore; an expired certificate is still refused.
func AcceptEnrolment(key crypto.Signer, certDER []byte, caDERs [][]byte, bootstrap []*x509.Certificate, want Identity, now time.Time) (Credentials, error) {
	if len(certDER) == 0 || len(certDER) > vigilv1.MaxCertificateBytes || len(caDERs) == 0 || len(caDERs) > MaxChainCertificates {
		return Credentials{}, fmt.Errorf("%w: enrolment answer has a missing or oversized certificate or CA list", ErrBadCertificate)
	}
	leaf, err := x509.ParseCertificate(certDER)
	if err != nil {
		return Credentials{}, fmt.Errorf("%w: %w", ErrBadCertificate, err)
	}
	c := Credentials{Key: key, Chain: []*x509.Certificate{leaf}}
	for _, der := range caDERs {
		ca, err := x509.ParseCertificate(der)
		if err != nil {
			return Credentials{}, fmt.Errorf("%w: CA certificate: %w", ErrBadCertificate, err)
		}
		if !slices.ContainsFunc(bootstrap, ca.Equal) {
			return Credentials{}, fmt.Errorf("%w: the coordinator returned CA %s, which this device was not given", ErrBadCertificate, Fingerprint(ca))
		}
		c.Roots = append(c.Roots, ca)
	}
	got, err := c.Verify(later(now, leaf.NotBefore))
	if err != nil {
		return Credentials{}, err
	}
	if got != want {
		return Credentials{}, fmt.Errorf("%w: the certificate names %s, want %s", ErrBadCertificate, got, want)
	}
	return c, nil
}

// SaveCredentials writes c into dir (created with mode 0700): the key with mode 0600, the chain
// and the roots with mode 0644. The three files are replaced together: they are written whole
// into dir/.pending first, which LoadCredentials finishes moving into place if a crash came
// before SaveCredentials did. Replacing them one after another left, after a crash during a
// renewal, a new key beside the old certificate, which no device could start with.
func SaveCredentials(dir string, c Credentials) error {
	if c.Key == nil || len(c.Chain) == 0 || len(c.Roots) == 0 {
		return errors.New("pki: credentials to save lack a key, a certificate or a CA")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	keyPEM, err := MarshalPrivateKeyPEM(c.Key)
	if err != nil {
		return err
	}
	// A save a crash interrupted is finished first: removing its pending files below would
	// otherwise leave what it had moved into place beside what it had not.
	if err := finishSave(dir); err != nil {
		return err
	}
	staging := filepath.Join(dir, pendingDir+".tmp")
	if err := os.RemoveAll(staging); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Mkdir(staging, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{KeyFile, keyPEM, 0o600},
		{CertFile, MarshalCertificatesPEM(c.Chain...), 0o644},
		{RootsFile, MarshalCertificatesPEM(c.Roots...), 0o644},
	} {
		if err := writeFileAtomic(filepath.Join(staging, f.name), f.data, f.mode, false); err != nil {
			return err
		}
	}
	pending := filepath.Join(dir, pendingDir)
	if err := os.RemoveAll(pending); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(staging, pending); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return finishSave(dir)
}

// pendingDir holds, in a credentials directory, a complete set of credentials being saved.
const pendingDir = ".pending"

// finishSave moves the files of a complete pending save into dir, and removes what an
// incomplete one left. It is idempotent, so a crash while it runs is finished by the next.
//
// It writes nothing when nothing is pending, so that credentials on a read-only mount load.
func finishSave(dir string) error {
	if staging := filepath.Join(dir, pendingDir+".tmp"); exists(staging) {
		if err := os.RemoveAll(staging); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
	}
	pending := filepath.Join(dir, pendingDir)
	if !exists(pending) {
		return nil
	}
	for _, name := range []string{KeyFile, CertFile, RootsFile} {
		err := os.Rename(filepath.Join(pending, name), filepath.Join(dir, name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) { // moved before a crash
			return fmt.Errorf("pki: finishing an interrupted save of %s: %w", dir, err)
		}
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Remove(pending); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// LoadCredentials reads credentials written by SaveCredentials, finishing a save a crash
// interrupted, and checks that the key belongs to the certificate. Call Verify to check the
// chain and the validity period.
func LoadCredentials(dir string) (Credentials, error) {
	if err := finishSave(dir); err != nil {
		return Credentials{}, err
	}
	key, err := readPrivateKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return Credentials{}, err
	}
	chain, err := ReadCertificates(filepath.Join(dir, CertFile))
	if err != nil {
		return Credentials{}, err
	}
	roots, err := ReadCertificates(filepath.Join(dir, RootsFile))
	if err != nil {
		return Credentials{}, err
	}
	if !samePublicKey(key.Public(), chain[0].PublicKey) {
		return Credentials{}, fmt.Errorf("%s: %w: the key in %s does not belong to it", filepath.Join(dir, CertFile), ErrBadCertificate, KeyFile)
	}
	return Credentials{Key: key, Chain: chain, Roots: roots}, nil
}

// ReadCertificates reads a strict PEM file of 1 to MaxChainCertificates certificates, such as
// the CA certificate a device is given with its enrolment token.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	data, _, err := readFileLimited(path, MaxPEMFileBytes)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}

// WriteKey writes key to a new file at path with mode 0600; it refuses to overwrite a file.
func WriteKey(path string, key crypto.Signer) error {
	data, err := MarshalPrivateKeyPEM(key)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600, true)
}

// ReadKey reads a key written by WriteKey, refusing a file others may read.
func ReadKey(path string) (crypto.Signer, error) { return readPrivateKey(path) }

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
