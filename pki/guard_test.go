package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// wantStatus fails unless err is a status error with code and ErrorInfo reason.
func wantStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code || Reason(err) != reason {
		t.Fatalf("got %v (code %v, reason %q), want code %v reason %q", err, status.Code(err), Reason(err), code, reason)
	}
}

func TestOnlyEnrollWithoutClientCertificate(t *testing.T) {
	e := newEnv(t, envOptions{})
	anon := e.dial(nil)
	wantStatus(t, getTask(anon, "dev-a"), codes.Unauthenticated, ReasonNoClientCert)
	ctx := context.Background()
	_, err := anon.GetModel(ctx, &vigilv1.GetModelRequest{})
	wantStatus(t, err, codes.Unauthenticated, ReasonNoClientCert)

	// Enroll goes through without a certificate, and the certificate then opens the rest.
	dev := e.enroll("dev-a")
	if id, err := dev.Identity(); err != nil || id != Device("dev-a") {
		t.Fatalf("enrolled identity %v, %v", id, err)
	}
	if err := getTask(e.dial(tlsCert(dev)), "dev-a"); err != nil {
		t.Fatal(err)
	}
	// A method the handler does not implement still passes the guard first.
	_, err = e.dial(tlsCert(dev)).GetModel(ctx, &vigilv1.GetModelRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetModel with a certificate: %v, want Unimplemented from the handler", err)
	}
}

func TestDeviceCannotClaimAnotherDevice(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enroll("dev-a")
	e.enroll("dev-b")
	c := e.dial(tlsCert(a))
	wantStatus(t, getTask(c, "dev-b"), codes.PermissionDenied, ReasonIdentityMismatch)
	if err := getTask(c, "dev-a"); err != nil {
		t.Fatal(err)
	}
}

func TestRevokedDeviceRefusedOnOpenConnection(t *testing.T) {
	e := newEnv(t, envOptions{})
	a := e.enroll("dev-a")
	b := e.enroll("dev-b")
	ca, cb := e.dial(tlsCert(a)), e.dial(tlsCert(b))
	for _, c := range []struct {
		cl vigilv1.CoordinatorClient
		id string
	}{{ca, "dev-a"}, {cb, "dev-b"}} {
		if err := getTask(c.cl, c.id); err != nil {
			t.Fatal(err)
		}
	}
	conns := e.lis.n.Load()

	// Revoked through the coordinator's own list: the very next call is refused.
	if err := e.revs.RevokeIdentity(Device("dev-a"), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, getTask(ca, "dev-a"), codes.Unauthenticated, ReasonRevoked)

	// Revoked by another process (`vigil pki revoke`) writing the same file: refused once the
	// recheck interval has passed, still without a restart.
	other, err := OpenRevocations(filepath.Join(e.dir, "revoked.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.RevokeSerial(b.Leaf().SerialNumber, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(RevocationRecheck)
	wantStatus(t, getTask(cb, "dev-b"), codes.Unauthenticated, ReasonRevoked)

	if got := e.lis.n.Load(); got != conns {
		t.Fatalf("the refusals came over %d new connections; they should use the open ones", got-conns)
	}

	// An enrolment authorised before the revocation is refused too; one authorised afterwards
	// enrols again, and the new certificate works (it starts after the revocation, though
	// certificates are normally backdated by more) while the old one stays refused.
	e.authorise("dev-a", e.clock.Now().Add(-2*RevocationRecheck))
	_, err = e.tryEnroll("dev-a")
	wantStatus(t, err, codes.Unauthenticated, ReasonRevoked)
	e.clock.Add(2 * time.Second)
	a2 := e.enroll("dev-a")
	if err := getTask(e.dial(tlsCert(a2)), "dev-a"); err != nil {
		t.Fatalf("re-enrolled device: %v", err)
	}
	wantStatus(t, getTask(ca, "dev-a"), codes.Unauthenticated, ReasonRevoked)
}

func TestRateLimit(t *testing.T) {
	lim, err := NewLimiter(LimiterConfig{Rate: 1, Burst: 3})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{limiter: lim})
	a, b := e.enroll("dev-a"), e.enroll("dev-b")
	ca, cb := e.dial(tlsCert(a)), e.dial(tlsCert(b))
	for i := range 3 {
		if err := getTask(ca, "dev-a"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	err = getTask(ca, "dev-a")
	wantStatus(t, err, codes.ResourceExhausted, ReasonRateLimited)
	var retry time.Duration
	for _, d := range status.Convert(err).Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			retry = ri.GetRetryDelay().AsDuration()
		}
	}
	if retry <= 0 || retry > time.Second {
		t.Fatalf("RetryInfo delay %v, want within (0, 1s]", retry)
	}
	// Another device has its own budget, and the first gets one call back per second.
	if err := getTask(cb, "dev-b"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(time.Second)
	if err := getTask(ca, "dev-a"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, getTask(ca, "dev-a"), codes.ResourceExhausted, ReasonRateLimited)
}

// testTrustee serves the Trustee service behind a guard that admits only the coordinator.
type testTrustee struct {
	vigilv1.UnimplementedTrusteeServer
}

func (testTrustee) Info(ctx context.Context, _ *vigilv1.TrusteeInfoRequest) (*vigilv1.TrusteeInfoResponse, error) {
	id, _ := IdentityFromContext(ctx)
	return &vigilv1.TrusteeInfoResponse{TrusteeId: "t1", ParamsId: id.String()}, nil
}

func TestTrusteeAdmitsOnlyTheCoordinator(t *testing.T) {
	e := newEnv(t, envOptions{})
	dev := e.enroll("dev-a")
	tkey, _ := GenerateKey()
	tcert, err := e.ca.Issue(CertSpec{Identity: Trustee("t1"), PublicKey: tkey.Public(), Hosts: []string{"127.0.0.1"}}, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	trustee := Credentials{Key: tkey, Chain: []*x509.Certificate{tcert}, Roots: []*x509.Certificate{e.ca.Certificate()}}
	guard, err := NewGuard(GuardConfig{Roles: []Role{RoleCoordinator}, Revocations: e.revs, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(append(guard.ServerOptions(), grpc.Creds(credentials.NewTLS(ServerTLS(trustee.TLSCertificate(), e.ca.Pool()))))...)
	vigilv1.RegisterTrusteeServer(s, testTrustee{})
	go s.Serve(l)
	defer s.Stop()

	call := func(cert *tls.Certificate, want Identity) (*vigilv1.TrusteeInfoResponse, error) {
		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(ClientTLS(cert, e.ca.Pool(), want))))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return vigilv1.NewTrusteeClient(conn).Info(ctx, &vigilv1.TrusteeInfoRequest{})
	}
	resp, err := call(tlsCert(e.coord), Trustee("t1"))
	if err != nil || resp.GetParamsId() != Coordinator("coord").String() {
		t.Fatalf("coordinator calling trustee: %v, %v", resp, err)
	}
	_, err = call(tlsCert(dev), Trustee("t1"))
	wantStatus(t, err, codes.PermissionDenied, ReasonWrongRole)
	_, err = call(nil, Trustee("t1"))
	wantStatus(t, err, codes.Unauthenticated, ReasonNoClientCert)
	// The coordinator expecting trustee t2 refuses to talk to t1, and a client expecting the
	// coordinator refuses a trustee.
	for _, want := range []Identity{Trustee("t2"), Coordinator("")} {
		if _, err := call(tlsCert(e.coord), want); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "expected") {
			t.Fatalf("client expecting %v: %v", want, err)
		}
	}
}

func TestGuardOnStreamsAndPlaintext(t *testing.T) {
	e := newEnv(t, envOptions{})
	dev := e.enroll("dev-a")
	guard, err := NewGuard(GuardConfig{Roles: []Role{RoleDevice}, Revocations: e.revs, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	serve := func(creds credentials.TransportCredentials) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := grpc.NewServer(append(guard.ServerOptions(), grpc.Creds(creds))...)
		healthpb.RegisterHealthServer(s, health.NewServer())
		go s.Serve(l)
		t.Cleanup(s.Stop)
		return l.Addr().String()
	}
	watch := func(addr string, creds credentials.TransportCredentials) error {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = st.Recv()
		return err
	}
	tlsAddr := serve(credentials.NewTLS(ServerTLS(e.coord.TLSCertificate(), e.ca.Pool())))
	if err := watch(tlsAddr, credentials.NewTLS(ClientTLS(tlsCert(dev), e.ca.Pool(), Coordinator("")))); err != nil {
		t.Fatalf("stream with a device certificate: %v", err)
	}
	wantStatus(t, watch(tlsAddr, credentials.NewTLS(ClientTLS(nil, e.ca.Pool(), Coordinator("")))), codes.Unauthenticated, ReasonNoClientCert)
	if err := e.revs.RevokeIdentity(Device("dev-a"), e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, watch(tlsAddr, credentials.NewTLS(ClientTLS(tlsCert(dev), e.ca.Pool(), Coordinator("")))), codes.Unauthenticated, ReasonRevoked)

	// A server set up without TLS refuses everything rather than serving anonymous callers.
	plainAddr := serve(insecure.NewCredentials())
	wantStatus(t, watch(plainAddr, insecure.NewCredentials()), codes.Unauthenticated, ReasonNotTLS)
}

func TestGuardConfigRefusesNonsense(t *testing.T) {
	revs, _ := OpenRevocations(filepath.Join(t.TempDir(), "r.json"))
	for _, cfg := range []GuardConfig{
		{Revocations: revs},
		{Roles: []Role{"admin"}, Revocations: revs},
		{Roles: []Role{RoleDevice}},
		{Roles: []Role{RoleDevice}, Revocations: revs, Unauthenticated: []string{"Enroll"}},
	} {
		if _, err := NewGuard(cfg); err == nil {
			t.Errorf("NewGuard(%+v) succeeded", cfg)
		}
	}
}
