package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// KeyExchange is the only TLS key exchange Vigil speaks: X25519 combined with ML-KEM-768, so the
// session keys stay secret even against a future quantum computer unless both halves break.
const KeyExchange = tls.X25519MLKEM768

// ServerTLS returns the TLS configuration of a coordinator or trustee serving with cert. It speaks
// TLS 1.3 with KeyExchange only, and verifies a client certificate against clientCAs when the
// client presents one (tls.VerifyClientCertIfGiven), so that a device can call Enroll before it has
// a certificate. The Guard interceptors require a verified certificate for every other method.
func ServerTLS(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{KeyExchange},
		Certificates:     []tls.Certificate{cert},
		ClientAuth:       tls.VerifyClientCertIfGiven,
		ClientCAs:        clientCAs,
		NextProtos:       []string{"h2"},
	}
}

// ServerMutualTLS returns the TLS configuration of a server all of whose callers hold
// certificates, such as a trustee, whose only caller is the coordinator: like ServerTLS, but a
// client without a certificate that verifies is refused in the handshake, before it can send
// any request.
func ServerMutualTLS(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	c := ServerTLS(cert, clientCAs)
	c.ClientAuth = tls.RequireAndVerifyClientCert
	return c
}

// ServerOnlyTLS returns the TLS configuration of a server that authenticates no client: the
// enrolment authority, whose callers are devices without a certificate, authorised by their
// one-time token instead. Like ServerTLS it speaks TLS 1.3 with KeyExchange only.
func ServerOnlyTLS(cert tls.Certificate) *tls.Config {
	c := ServerTLS(cert, nil)
	c.ClientAuth = tls.NoClientCert
	return c
}

// ClientTLS returns the TLS configuration for dialling a coordinator or trustee. It speaks TLS
// 1.3 with KeyExchange only, verifies the server's chain against roots and its host name as
// usual, and requires that the server's certificate names the identity server (any ID of that
// role when server.ID is empty). cert is the client's certificate, or nil before enrolment.
func ClientTLS(cert *tls.Certificate, roots *x509.CertPool, server Identity) *tls.Config {
	c := &tls.Config{
		MinVersion:       tls.VersionTLS13,
		MaxVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{KeyExchange},
		RootCAs:          roots,
		NextProtos:       []string{"h2"},
		VerifyConnection: func(cs tls.ConnectionState) error { return checkServer(cs, server) },
	}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

func checkServer(cs tls.ConnectionState, want Identity) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: the server presented no certificate", ErrBadCertificate)
	}
	got, err := IdentityOf(cs.PeerCertificates[0])
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}
	if got.Role != want.Role || want.ID != "" && got.ID != want.ID {
		return fmt.Errorf("%w: the server is %s, expected %s", ErrBadCertificate, got, describe(want))
	}
	return nil
}

func describe(id Identity) string {
	if id.ID == "" {
		return "any " + string(id.Role)
	}
	return id.String()
}
