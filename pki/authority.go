package pki

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Layout of a PKI directory as `vigil pki init` makes it: the CA (CACertFile, CAKeyFile), the
// revocation list and the coordinator's own credentials. Enrolment tokens are not here: the
// enrolment authority, a separate role, keeps them (TokensFile in its own directory).
const (
	TokensFile      = "tokens.json"
	RevocationsFile = "revoked.json"
	CoordinatorDir  = "coordinator"
)

// Authority is an opened PKI directory: what a coordinator needs to issue transport
// certificates and check revocations.
type Authority struct {
	Dir         string
	CA          *CA
	Revocations *Revocations
}

// InitAuthority creates a PKI directory: a new CA named name, an empty revocation list, and
// credentials for the coordinator coordinatorID serving on hosts. It refuses
// a directory that already holds a CA.
func InitAuthority(dir, name, coordinatorID string, hosts []string, caValidity, serverValidity time.Duration, now time.Time) (*Authority, error) {
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("pki: %s already holds a CA; refusing to replace it", dir)
	}
	ca, err := NewCA(name, caValidity, now)
	if err != nil {
		return nil, err
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(CertSpec{Identity: Coordinator(coordinatorID), PublicKey: key.Public(), Validity: serverValidity, Hosts: hosts}, now)
	if err != nil {
		return nil, err
	}
	if err := ca.Save(dir); err != nil {
		return nil, err
	}
	creds := Credentials{Key: key, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{ca.Certificate()}}
	if err := SaveCredentials(filepath.Join(dir, CoordinatorDir), creds); err != nil {
		return nil, err
	}
	return OpenAuthority(dir)
}

// OpenAuthority opens a PKI directory made by InitAuthority.
func OpenAuthority(dir string) (*Authority, error) {
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, err
	}
	revs, err := OpenRevocations(filepath.Join(dir, RevocationsFile))
	if err != nil {
		return nil, err
	}
	return &Authority{Dir: dir, CA: ca, Revocations: revs}, nil
}

// CoordinatorCredentials loads the coordinator's credentials from the directory.
func (a *Authority) CoordinatorCredentials() (Credentials, error) {
	return LoadCredentials(filepath.Join(a.Dir, CoordinatorDir))
}

// IssueCredentials makes a fresh key and a certificate for id from the CA, as for a trustee
// whose operator receives the files out of band. If id was revoked, the certificate starts after
// the revocation.
func (a *Authority) IssueCredentials(id Identity, hosts []string, validity time.Duration, now time.Time) (Credentials, error) {
	at, _, err := a.Revocations.RevokedAt(id, now)
	if err != nil {
		return Credentials{}, err
	}
	key, err := GenerateKey()
	if err != nil {
		return Credentials{}, err
	}
	cert, err := a.CA.Issue(CertSpec{Identity: id, PublicKey: key.Public(), Validity: validity, Hosts: hosts, StartAfter: at}, now)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{Key: key, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{a.CA.Certificate()}}, nil
}
