package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/pki"
)

// The tier's connections are mutual TLS, as every other connection of Vigil is (issue 16): TLS
// 1.3 with pki.KeyExchange only (the hybrid X25519MLKEM768), and on both sides a certificate
// from the organisation's CA naming a coordinator. The processes of the tier, the round leader,
// its standbys and the aggregation frontends, all present the coordinator's credentials, so the
// coordinator role is the one identity the tier admits: a device's or a trustee's certificate,
// from the same CA, is refused like a stranger's.
//
// The embedded server presents the coordinator's certificate too, whose DNS and IP names are the
// ones devices dial (vigil setup --hosts), not necessarily the address frontends reach the
// embedded server on (--nats-listen 0.0.0.0:4222 dialled by an internal address, say). Its
// clients therefore verify what the rest of pki verifies, the chain to the organisation's CA and
// the coordinator role in the certificate's identity URI, and not the host name: any coordinator
// certificate of the organisation is equally trusted whatever address it answers on.

// ErrNotCoordinator means the peer's certificate verified but does not name a coordinator.
var ErrNotCoordinator = errors.New("cluster: the peer's certificate does not name a coordinator")

// ServerTLS returns the configuration of a tier server presenting cert (the coordinator's): only
// clients whose certificate chains to orgCA, names a coordinator and is not revoked in revoked
// (nil: no list) complete the handshake.
func ServerTLS(cert tls.Certificate, orgCA *x509.CertPool, revoked *pki.Revocations) *tls.Config {
	c := pki.ServerMutualTLS(cert, orgCA)
	c.NextProtos = nil // NATS negotiates no application protocol
	c.VerifyConnection = func(cs tls.ConnectionState) error { return requireCoordinator(cs.PeerCertificates, revoked) }
	return c
}

// ClientTLS returns the configuration of a tier client presenting cert (the coordinator's) to
// servers that present a coordinator certificate of the organisation, as the embedded server
// does: the server's chain is verified against orgCA and its certificate must name a
// coordinator not revoked in revoked (nil: no list); its host names are not compared with the
// address dialled (see above).
func ClientTLS(cert tls.Certificate, orgCA *x509.CertPool, revoked *pki.Revocations) *tls.Config {
	c := clientTLS(cert)
	// The chain is verified below, without the host name; nothing is skipped otherwise.
	c.InsecureSkipVerify = true
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := verifyChain(cs.PeerCertificates, orgCA, x509.ExtKeyUsageServerAuth); err != nil {
			return err
		}
		return requireCoordinator(cs.PeerCertificates, revoked)
	}
	return c
}

// ClientTLSServersCA returns the configuration of a tier client presenting cert to the servers of
// an external NATS cluster whose certificates come from a CA of their own, serversCA (vigil
// coordinator --nats-ca): the servers are verified as any TLS server is, their chain against
// serversCA and their host names against the URL dialled.
func ClientTLSServersCA(cert tls.Certificate, serversCA *x509.CertPool) *tls.Config {
	c := clientTLS(cert)
	c.RootCAs = serversCA
	return c
}

// clientTLS is what every tier client's configuration shares: TLS 1.3 with the hybrid key
// exchange only, presenting cert.
func clientTLS(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{pki.KeyExchange},
		Certificates:     []tls.Certificate{cert},
	}
}

func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage) error {
	if len(certs) == 0 {
		return fmt.Errorf("%w: the peer presented no certificate", pki.ErrBadCertificate)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: time.Now(),
		KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("%w: %w", pki.ErrBadCertificate, err)
	}
	return nil
}

func requireCoordinator(certs []*x509.Certificate, revoked *pki.Revocations) error {
	if len(certs) == 0 {
		return fmt.Errorf("%w: the peer presented no certificate", pki.ErrBadCertificate)
	}
	id, err := pki.IdentityOf(certs[0])
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNotCoordinator, err)
	}
	if id.Role != pki.RoleCoordinator {
		return fmt.Errorf("%w: it is %s", ErrNotCoordinator, id)
	}
	if revoked != nil {
		// At the handshake: a connection made before a revocation lasts until it reconnects.
		return revoked.Check(id, certs[0], time.Now())
	}
	return nil
}
