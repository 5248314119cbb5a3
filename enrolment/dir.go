package enrolment

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/pki"
)

// Layout of an authority directory as InitDir (`vigil enrol init`) makes it.
const (
	// KeyFile is the ML-DSA-65 key that signs device records (mode 0600), PublicKeyFile its
	// public half, which the root of trust lists in its enrolment role.
	KeyFile       = "enrolment.key"
	PublicKeyFile = "enrolment.pub"
	// TokensFile is the one-time token store.
	TokensFile = pki.TokensFile
	// The authority's own TLS CA is pki.CACertFile (what devices are given to reach the
	// authority) and pki.CAKeyFile; TLSDir holds the server's credentials.
	TLSDir = "tls"
	// ServerID is the identity the authority's TLS certificate names (pki.EnrolmentAuthority).
	ServerID = "enrolment"
)

// Dir is an opened authority directory.
type Dir struct {
	Path   string
	Key    *sig.PrivateKey
	Tokens *pki.Tokens
	// TLS is the server's key and certificate, issued by the authority's own CA.
	TLS pki.Credentials
}

// InitDir creates an authority directory at path: a new record-signing key, an empty token
// store, and a TLS CA of its own with a server certificate for hosts. It refuses a directory
// that already holds a key.
func InitDir(path string, hosts []string, now time.Time) (*Dir, error) {
	if _, err := os.Stat(filepath.Join(path, KeyFile)); err == nil {
		return nil, fmt.Errorf("enrolment: %s already holds an authority's key; refusing to replace it", path)
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("enrolment: %w", err)
	}
	key, err := sig.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("enrolment: %w", err)
	}
	// The public key first: a crash in between leaves no private key that nothing lists.
	if err := sig.WritePublicKeyFile(filepath.Join(path, PublicKeyFile), key.Public()); err != nil {
		return nil, fmt.Errorf("enrolment: %w", err)
	}
	if err := sig.WritePrivateKeyFile(filepath.Join(path, KeyFile), key); err != nil {
		return nil, fmt.Errorf("enrolment: %w", err)
	}
	ca, err := pki.NewCA("Vigil enrolment authority", 0, now)
	if err != nil {
		return nil, err
	}
	if err := ca.Save(path); err != nil {
		return nil, err
	}
	tlsKey, err := pki.GenerateKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(pki.CertSpec{Identity: pki.EnrolmentAuthority(ServerID), PublicKey: tlsKey.Public(), Hosts: hosts}, now)
	if err != nil {
		return nil, err
	}
	creds := pki.Credentials{Key: tlsKey, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{ca.Certificate()}}
	if err := pki.SaveCredentials(filepath.Join(path, TLSDir), creds); err != nil {
		return nil, err
	}
	return OpenDir(path)
}

// OpenDir opens an authority directory made by InitDir.
func OpenDir(path string) (*Dir, error) {
	key, err := sig.ReadPrivateKeyFile(filepath.Join(path, KeyFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("enrolment: %s holds no authority (create one with `vigil enrol init`): %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("enrolment: %w", err)
	}
	tokens, err := pki.OpenTokens(filepath.Join(path, TokensFile))
	if err != nil {
		return nil, err
	}
	creds, err := pki.LoadCredentials(filepath.Join(path, TLSDir))
	if err != nil {
		return nil, err
	}
	return &Dir{Path: path, Key: key, Tokens: tokens, TLS: creds}, nil
}

// CACertPath is the file devices are given to trust the authority's TLS certificate.
func (d *Dir) CACertPath() string { return filepath.Join(d.Path, pki.CACertFile) }
