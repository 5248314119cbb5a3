package sim

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/trustee"
)

// embedded is an organisation's whole trust setup in one process, as the demo runs it: a CA
// whose certificates secure every connection with mutual TLS, an enrolment authority serving
// device records over its own TLS, a root of trust whose enrolment role is that authority's
// key, a threshold key ceremony, and the trustees serving decryption shares over TLS on
// 127.0.0.1.
type embedded struct {
	auth        *pki.Authority
	coordCreds  pki.Credentials
	enrol       *enrolment.Dir
	enrolAddr   string
	enrolSrv    *grpc.Server
	keys        *release.KeySet
	root        *release.Root
	key         *he.KeyEpoch
	keyDocument []byte
	policy      []byte // the privacy office's signed policy; nil without differential privacy
	trustees    *trustee.LocalCluster
	trusteeIDs  []string
}

// trusteeIDs are the trustees' names, as three offices of an organisation would hold them.
var defaultTrustees = []string{"privacy-office", "security", "audit", "legal", "works-council"}

func newEmbedded(dir string, trustees, threshold, minContributors int, policy *release.PrivacyPolicy, now time.Time) (_ *embedded, err error) {
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
	if e.enrol, err = enrolment.InitDir(filepath.Join(dir, "enrol"), []string{"127.0.0.1"}, now); err != nil {
		return nil, err
	}
	// The trustees' ceremony keys make the root's trustees role: they approve the key epoch
	// after their test decryptions and sign their commitments to each round's participant set.
	trust, err := NewOrgTrust(e.trusteeIDs, threshold, e.enrol.Key.Public(), policy, now, 90*24*time.Hour)
	if err != nil {
		return nil, err
	}
	e.keys, e.root, e.key, e.keyDocument, e.policy = trust.Keys, trust.Root, trust.Ceremony.Key, trust.KeyDocument, trust.Policy
	if err := e.startEnrolment(); err != nil {
		return nil, err
	}
	e.trustees, err = trustee.StartLocal(trustee.LocalConfig{
		Shares: trust.Ceremony.Shares, Signers: trust.Signers, Root: e.root, MinContributors: minContributors, StateDir: filepath.Join(dir, "trustees"),
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

// trusteeServerOptions are mutual TLS with a certificate for trustee id, required at the
// handshake, and a guard that admits only the coordinator.
func (e *embedded) trusteeServerOptions(id string, now time.Time) ([]grpc.ServerOption, error) {
	creds, err := e.auth.IssueCredentials(pki.Trustee(id), []string{"127.0.0.1"}, 30*24*time.Hour, now)
	if err != nil {
		return nil, err
	}
	opts, err := transport.Trustee(e.auth.Revocations)
	if err != nil {
		return nil, err
	}
	return append(opts, grpc.Creds(credentials.NewTLS(pki.ServerMutualTLS(creds.TLSCertificate(), e.auth.CA.Pool())))), nil
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

// startEnrolment serves the enrolment authority on 127.0.0.1.
func (e *embedded) startEnrolment() error {
	a, err := enrolment.New(enrolment.Config{Key: e.enrol.Key, Tokens: e.enrol.Tokens})
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e.enrolSrv = grpc.NewServer(enrolment.ServerOptions(e.enrol.TLS)...)
	a.RegisterService(e.enrolSrv)
	go e.enrolSrv.Serve(lis)
	e.enrolAddr = lis.Addr().String()
	return nil
}

// enroller issues device certificates to devices whose device record verifies.
func (e *embedded) enroller() (*pki.Enroller, error) {
	return pki.NewEnroller(pki.EnrollerConfig{CA: e.auth.CA, Revocations: e.auth.Revocations})
}

// enrolDevice gives device id a one-time token, lets it register with the enrolment authority
// for a device record in region, enrol with the coordinator over a connection that trusts the
// CA, and returns its connection presenting its own certificate, and its identity.
func (e *embedded) enrolDevice(ctx context.Context, addr, id, region string, now time.Time) (*grpc.ClientConn, *client.Identity, error) {
	token, err := e.enrol.Tokens.Issue(id, time.Hour, now)
	if err != nil {
		return nil, nil, err
	}
	authority, err := grpc.NewClient(e.enrolAddr, grpc.WithTransportCredentials(credentials.NewTLS(
		pki.ClientTLS(nil, pki.Credentials{Roots: e.enrol.TLS.Roots}.RootPool(), pki.EnrolmentAuthority("")))))
	if err != nil {
		return nil, nil, err
	}
	defer authority.Close()
	boot, err := transport.DialCoordinator(addr, pki.ClientTLS(nil, e.auth.CA.Pool(), pki.Coordinator("")))
	if err != nil {
		return nil, nil, err
	}
	defer boot.Close()
	ident, err := client.Enrol(ctx, client.EnrolConfig{
		DeviceID: id, Region: region, Token: token,
		Authority: vigilv1.NewEnrolmentClient(authority), Coordinator: vigilv1.NewCoordinatorClient(boot),
		Bootstrap: []*x509.Certificate{e.auth.CA.Certificate()}, Root: e.root, Now: func() time.Time { return now },
	})
	if err != nil {
		return nil, nil, err
	}
	cert := ident.TLS.TLSCertificate()
	conn, err := transport.DialCoordinator(addr, pki.ClientTLS(&cert, ident.TLS.RootPool(), pki.Coordinator("")))
	if err != nil {
		return nil, nil, err
	}
	return conn, ident, nil
}

func (e *embedded) describe() string {
	return fmt.Sprintf("updates encrypted with threshold CKKS under key epoch %d (N=%d, %d moduli of 60 bits), approved by the trustees after their test decryptions; "+
		"%d-of-%d trustees (%s) over mutual TLS decrypt only sums they verified",
		e.key.Epoch, e.key.Params().N(), len(e.key.Params().Moduli()), e.key.Threshold, len(e.trusteeIDs), strings.Join(e.trusteeIDs, ", "))
}

func (e *embedded) close() {
	e.trustees.Close()
	if e.enrolSrv != nil {
		e.enrolSrv.Stop()
	}
}
