package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/trustee"
)

// embedded is an organisation's whole trust setup in one process, as the demo runs it: a CA
// whose certificates secure every connection with mutual TLS, a root of trust, a threshold key
// ceremony, and the trustees serving decryption shares over TLS on 127.0.0.1.
type embedded struct {
	auth        *pki.Authority
	coordCreds  pki.Credentials
	keys        *release.KeySet
	key         *he.KeyEpoch
	keyDocument []byte
	trustees    *trustee.LocalCluster
	trusteeIDs  []string
}

// trusteeIDs are the trustees' names, as three offices of an organisation would hold them.
var defaultTrustees = []string{"privacy-office", "security", "audit", "legal", "works-council"}

func newEmbedded(dir string, trustees, threshold, minContributors int, now time.Time) (_ *embedded, err error) {
	if trustees < 2 || trustees > len(defaultTrustees) || threshold < 2 || threshold > trustees {
		return nil, fmt.Errorf("need 2 to %d trustees and a threshold from 2 to their number, got %d of %d", len(defaultTrustees), threshold, trustees)
	}
	e := &embedded{trusteeIDs: defaultTrustees[:trustees]}
	e.auth, err = pki.InitAuthority(filepath.Join(dir, "pki"), "Vigil demo CA", "coordinator", []string{"127.0.0.1", "localhost"},
		365*24*time.Hour, 30*24*time.Hour, now)
	if err != nil {
		return nil, err
	}
	if e.coordCreds, err = e.auth.CoordinatorCredentials(); err != nil {
		return nil, err
	}
	if e.keys, err = release.NewKeySet(rand.Reader, now.Add(365*24*time.Hour)); err != nil {
		return nil, err
	}
	params := he.DefaultParams()
	shares, key, err := he.LocalCeremony(params, 1, e.trusteeIDs, threshold)
	if err != nil {
		return nil, err
	}
	e.key = key
	pk, err := key.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if e.keyDocument, err = e.keys.SignKeyEpoch(1, params.ID(), pk, now, now.Add(90*24*time.Hour)); err != nil {
		return nil, err
	}
	e.trustees, err = trustee.StartLocal(trustee.LocalConfig{
		Shares: shares, MinContributors: minContributors, StateDir: filepath.Join(dir, "trustees"),
		ServerOptions: func(id string) ([]grpc.ServerOption, error) { return e.trusteeServerOptions(id, now) },
		DialOptions: func(id string) ([]grpc.DialOption, error) {
			cert := e.coordCreds.TLSCertificate()
			return []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(&cert, e.auth.CA.Pool(), pki.Trustee(id))))}, nil
		},
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// trusteeServerOptions are mutual TLS with a certificate for trustee id and a guard that admits
// only the coordinator.
func (e *embedded) trusteeServerOptions(id string, now time.Time) ([]grpc.ServerOption, error) {
	creds, err := e.auth.IssueCredentials(pki.Trustee(id), []string{"127.0.0.1"}, 30*24*time.Hour, now)
	if err != nil {
		return nil, err
	}
	g, err := pki.NewGuard(pki.GuardConfig{Roles: []pki.Role{pki.RoleCoordinator}, Revocations: e.auth.Revocations})
	if err != nil {
		return nil, err
	}
	return append(g.ServerOptions(), grpc.Creds(credentials.NewTLS(pki.ServerTLS(creds.TLSCertificate(), e.auth.CA.Pool())))), nil
}

// sealing returns the encrypted sealing: updates under the signed key epoch, sums decrypted by
// the trustees.
func (e *embedded) sealing() (coordinator.Sealing, error) {
	tc, err := trustee.NewClient(trustee.ClientConfig{Key: e.key, Trustees: e.trustees.Clients})
	if err != nil {
		return nil, err
	}
	return coordinator.NewThresholdHE(e.key, e.keyDocument, tc)
}

// enroller issues device certificates against the authority's tokens.
func (e *embedded) enroller() (*pki.Enroller, error) {
	return pki.NewEnroller(pki.EnrollerConfig{CA: e.auth.CA, Tokens: e.auth.Tokens, Revocations: e.auth.Revocations})
}

// serverOptions serve the coordinator's API with mutual TLS and the guard: devices only, one
// token bucket each, Enroll open to callers without a certificate.
func (e *embedded) serverOptions() ([]grpc.ServerOption, error) {
	lim, err := pki.NewLimiter(pki.LimiterConfig{Rate: 100, Burst: 200})
	if err != nil {
		return nil, err
	}
	g, err := pki.NewGuard(pki.GuardConfig{
		Roles: []pki.Role{pki.RoleDevice}, Unauthenticated: []string{vigilv1.Coordinator_Enroll_FullMethodName},
		Revocations: e.auth.Revocations, Limiter: lim,
	})
	if err != nil {
		return nil, err
	}
	opts := append(coordinator.ServerOptions(), g.ServerOptions()...)
	return append(opts, grpc.Creds(credentials.NewTLS(pki.ServerTLS(e.coordCreds.TLSCertificate(), e.auth.CA.Pool())))), nil
}

// enrolDevice gives device id a one-time token, lets it enrol over a connection that trusts
// the CA, and returns its connection presenting its own certificate.
func (e *embedded) enrolDevice(ctx context.Context, addr, id string, now time.Time) (*grpc.ClientConn, error) {
	token, err := e.auth.Tokens.Issue(id, time.Hour, now)
	if err != nil {
		return nil, err
	}
	ca := e.auth.CA.Certificate()
	boot, err := dialCoordinator(addr, pki.ClientTLS(nil, e.auth.CA.Pool(), pki.Coordinator("")))
	if err != nil {
		return nil, err
	}
	defer boot.Close()
	creds, err := client.Enrol(ctx, vigilv1.NewCoordinatorClient(boot), id, "", token, []*x509.Certificate{ca}, now)
	if err != nil {
		return nil, err
	}
	cert := creds.TLSCertificate()
	return dialCoordinator(addr, pki.ClientTLS(&cert, creds.RootPool(), pki.Coordinator("")))
}

func (e *embedded) describe() string {
	return fmt.Sprintf("updates encrypted with threshold CKKS under key epoch %d (N=%d, one 60-bit modulus); %d-of-%d trustees (%s) over mutual TLS",
		e.key.Epoch, e.key.Params().N(), e.key.Threshold, len(e.trusteeIDs), strings.Join(e.trusteeIDs, ", "))
}

func (e *embedded) close() { e.trustees.Close() }
