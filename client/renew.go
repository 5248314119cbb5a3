package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// RenewFraction is how far into its lifetime a device renews its certificate: at two thirds a
// 30-day certificate has ten days left, so a device that is off for a week still renews before
// it expires.
const RenewFraction = 2.0 / 3

// RenewAt returns when a certificate is due for renewal: RenewFraction of the way from its
// NotBefore to its NotAfter.
func RenewAt(cert *x509.Certificate) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	return cert.NotBefore.Add(time.Duration(float64(life) * RenewFraction))
}

// RenewConfig configures a Renewer.
type RenewConfig struct {
	// Dir is where the renewed credentials are saved, as Enrol saves them; empty keeps them in
	// memory only.
	Dir string
	// Coordinator is a connection presenting the device's current certificate: dial it with
	// Renewer.ClientTLS, so that new connections present the newest certificate. It may be set
	// with Connect after NewRenewer, before the first renewal.
	Coordinator vigilv1.CoordinatorClient
	// Bootstrap, if set, is a connection without a client certificate, used when the current
	// certificate has already expired (a device off for longer than the remaining lifetime):
	// the device then enrols again with its device record, as at first.
	Bootstrap vigilv1.CoordinatorClient
	// Now replaces the clock in tests.
	Now func() time.Time
}

// Renewer keeps a device's TLS certificate fresh. The coordinator renews a certificate for its
// verified holder (Enroll with a certificate request over a connection presenting it); the
// device record and its proof come along, as the coordinator checks them on every enrolment.
type Renewer struct {
	cfg RenewConfig
	mu  sync.Mutex
	id  *Identity
}

// NewRenewer returns a Renewer of id's certificate.
func NewRenewer(id *Identity, cfg RenewConfig) (*Renewer, error) {
	if id == nil || len(id.TLS.Chain) == 0 || id.SigningKey == nil {
		return nil, errors.New("client: renewal needs an enrolled identity")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Renewer{cfg: cfg, id: id}, nil
}

// Connect sets the connections renewals use (RenewConfig.Coordinator and Bootstrap), for a
// Coordinator dialled with ClientTLS. Call it before Run or the first renewal.
func (r *Renewer) Connect(coordinator, bootstrap vigilv1.CoordinatorClient) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg.Coordinator, r.cfg.Bootstrap = coordinator, bootstrap
}

// Identity returns the device's identity with its newest certificate.
func (r *Renewer) Identity() *Identity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

// ClientTLS returns the TLS configuration for connections to the coordinator: each handshake
// presents the newest certificate, so that connections made after a renewal (the coordinator
// recycles its connections daily) use it. An expired certificate is not presented, since the
// handshake would fail: the connection then reaches the coordinator as a stranger, which may
// only enrol, as Renew does.
func (r *Renewer) ClientTLS(server pki.Identity) *tls.Config {
	c := pki.ClientTLS(nil, r.Identity().TLS.RootPool(), server)
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		creds := r.Identity().TLS
		if r.cfg.Now().After(creds.Leaf().NotAfter) {
			return &tls.Certificate{}, nil
		}
		cert := creds.TLSCertificate()
		return &cert, nil
	}
	return c
}

// Due returns when the current certificate is due for renewal.
func (r *Renewer) Due() time.Time { return RenewAt(r.Identity().TLS.Leaf()) }

// RenewIfDue renews the certificate if it is due, and reports whether it did.
func (r *Renewer) RenewIfDue(ctx context.Context) (bool, error) {
	if r.cfg.Now().Before(r.Due()) {
		return false, nil
	}
	return true, r.Renew(ctx)
}

// Renew replaces the certificate now, on a new key: over Coordinator while the current one is
// valid, over Bootstrap once it has expired.
func (r *Renewer) Renew(ctx context.Context) error {
	r.mu.Lock()
	id, api, bootstrap := r.id, r.cfg.Coordinator, r.cfg.Bootstrap
	r.mu.Unlock()
	now := r.cfg.Now()
	if api == nil {
		return errors.New("client: renewal needs a connection to the coordinator")
	}
	if now.After(id.TLS.Leaf().NotAfter) {
		if bootstrap == nil {
			return fmt.Errorf("client: the certificate of %s expired at %s and there is no connection to enrol again",
				id.DeviceID, id.TLS.Leaf().NotAfter.Format(time.RFC3339))
		}
		api = bootstrap
	}
	tlsKey, err := pki.GenerateKey()
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	csr, err := pki.CreateCSR(tlsKey, id.DeviceID)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	proof, err := enrolment.ProveRecord(id.SigningKey, id.DeviceID, csr)
	if err != nil {
		return err
	}
	resp, err := api.Enroll(ctx, &vigilv1.EnrollRequest{
		DeviceId: id.DeviceID, Region: id.Region, CertificateRequest: csr, DeviceRecord: id.Record, RecordProof: proof,
	})
	if err != nil {
		return fmt.Errorf("client: renew the certificate of %s: %w", id.DeviceID, err)
	}
	// The CA must be one the device already trusts: a renewal cannot move it to another.
	creds, err := pki.AcceptEnrolment(tlsKey, resp.GetCertificate(), resp.GetCaCertificates(), id.TLS.Roots, pki.Device(id.DeviceID), now)
	if err != nil {
		return fmt.Errorf("client: renew the certificate of %s: %w", id.DeviceID, err)
	}
	if r.cfg.Dir != "" {
		if err := pki.SaveCredentials(r.cfg.Dir, creds); err != nil {
			return fmt.Errorf("client: %w", err)
		}
	}
	next := *id
	next.TLS = creds
	r.mu.Lock()
	r.id = &next
	r.mu.Unlock()
	return nil
}

// Run renews the certificate whenever it is due until ctx ends, retrying failures after a
// pause that grows to an hour; it returns ctx's error.
func (r *Renewer) Run(ctx context.Context) error {
	pause := time.Minute
	for {
		var wait time.Duration
		if _, err := r.RenewIfDue(ctx); err != nil {
			wait = pause
			pause = min(2*pause, time.Hour)
		} else {
			pause = time.Minute
			wait = max(time.Until(r.Due()), time.Second)
		}
		t := time.NewTimer(min(wait, time.Hour)) // re-checked hourly: a suspended laptop's timer runs late
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
