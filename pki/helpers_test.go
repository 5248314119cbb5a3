package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

const enrollMethod = "/vigil.v1.Coordinator/Enroll"

// clock is a settable time source for the guard, the CA and the stores. TLS itself checks
// certificates against the real clock, so the test clock starts ten minutes in the past: the
// certificates it issues are valid for real, and a test may move it forward by up to ten
// minutes without TLS noticing.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Now().Add(-10 * time.Minute).UnixNano())
	return c
}
func (c *clock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// testCoordinator is the smallest Coordinator service that uses pki the way the real one should:
// Enroll through the Enroller, every other call checked with RequireDevice. Vigil's coordinator
// takes a device's authorisation to enrol from a device record the enrolment authority signed;
// here the test authorises device IDs directly.
type testCoordinator struct {
	vigilv1.UnimplementedCoordinatorServer
	enroller *Enroller
	now      func() time.Time

	hold       chan struct{} // if set, GetTask waits for it to close
	holdUpload chan struct{} // if set, SubmitUpdate waits for it to close

	mu         sync.Mutex
	state      tls.ConnectionState  // of the last GetTask
	authorised map[string]time.Time // device ID -> when its enrolment was authorised
}

const reasonNotAuthorised = "NOT_AUTHORISED"

func (s *testCoordinator) Enroll(ctx context.Context, req *vigilv1.EnrollRequest) (*vigilv1.EnrollResponse, error) {
	if len(req.GetCertificateRequest()) > vigilv1.MaxCertificateBytes {
		return nil, refuse(codes.InvalidArgument, ReasonInvalidArgument, "too large", 0)
	}
	s.mu.Lock()
	at, ok := s.authorised[req.GetDeviceId()]
	s.mu.Unlock()
	if !ok {
		return nil, refuse(codes.PermissionDenied, reasonNotAuthorised, req.GetDeviceId()+" may not enrol", 0)
	}
	iss, err := s.enroller.Enroll(req.GetDeviceId(), at, req.GetCertificateRequest(), s.now())
	if err != nil {
		return nil, StatusError(err)
	}
	return &vigilv1.EnrollResponse{Certificate: iss.Certificate, CaCertificates: iss.CACertificates}, nil
}

func (s *testCoordinator) GetTask(ctx context.Context, req *vigilv1.GetTaskRequest) (*vigilv1.GetTaskResponse, error) {
	if err := RequireDevice(ctx, req.GetDeviceId()); err != nil {
		return nil, err
	}
	if s.hold != nil {
		<-s.hold
	}
	if p, ok := peer.FromContext(ctx); ok {
		s.mu.Lock()
		s.state = p.AuthInfo.(credentials.TLSInfo).State
		s.mu.Unlock()
	}
	return &vigilv1.GetTaskResponse{RetryAfterMillis: 1000}, nil
}

func (s *testCoordinator) SubmitUpdate(ctx context.Context, req *vigilv1.SubmitUpdateRequest) (*vigilv1.SubmitUpdateResponse, error) {
	if err := RequireDevice(ctx, req.GetDeviceId()); err != nil {
		return nil, err
	}
	if s.holdUpload != nil {
		select {
		case <-s.holdUpload:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &vigilv1.SubmitUpdateResponse{}, nil
}

// countingListener counts accepted connections, to show that a refusal happened on a connection
// opened before.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// env is a coordinator with a CA and revocation list in a temporary directory, serving the test
// Coordinator over real TLS on loopback.
type env struct {
	t     *testing.T
	dir   string
	ca    *CA
	revs  *Revocations
	clock *clock
	coord Credentials
	lis   *countingListener
	srv   *testCoordinator
}

type envOptions struct {
	limiter *Limiter
	limits  *RequestLimits
}

func newEnv(t *testing.T, opt envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	clk := newClock()
	ca, err := NewCA("Vigil test CA", 0, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(CertSpec{Identity: Coordinator("coord"), PublicKey: key.Public(), Hosts: []string{"127.0.0.1", "localhost"}}, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	revs, err := OpenRevocations(filepath.Join(dir, "revoked.json"))
	if err != nil {
		t.Fatal(err)
	}
	enroller, err := NewEnroller(EnrollerConfig{CA: ca, Revocations: revs})
	if err != nil {
		t.Fatal(err)
	}
	guard, err := NewGuard(GuardConfig{
		Roles: []Role{RoleDevice}, Unauthenticated: []string{enrollMethod},
		Revocations: revs, Limiter: opt.limiter, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{
		t: t, dir: dir, ca: ca, revs: revs, clock: clk,
		coord: Credentials{Key: key, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{ca.Certificate()}},
		srv:   &testCoordinator{enroller: enroller, now: clk.Now, authorised: map[string]time.Time{}},
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.lis = &countingListener{Listener: l}
	opts := []grpc.ServerOption{
		grpc.Creds(credentials.NewTLS(ServerTLS(e.coord.TLSCertificate(), ca.Pool()))),
		grpc.MaxRecvMsgSize(vigilv1.MaxMessageBytes),
	}
	if opt.limits != nil {
		opts = append(opts, opt.limits.ServerOptions()...)
	}
	opts = append(opts, guard.ServerOptions()...)
	s := grpc.NewServer(opts...)
	vigilv1.RegisterCoordinatorServer(s, e.srv)
	go s.Serve(e.lis)
	t.Cleanup(s.Stop)
	return e
}

func (e *env) addr() string { return e.lis.Addr().String() }

// dial connects to the coordinator with cert (nil: none), trusting the env's CA.
func (e *env) dial(cert *tls.Certificate) vigilv1.CoordinatorClient {
	e.t.Helper()
	conn, err := grpc.NewClient(e.addr(), grpc.WithTransportCredentials(
		credentials.NewTLS(ClientTLS(cert, e.ca.Pool(), Coordinator("")))))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return vigilv1.NewCoordinatorClient(conn)
}

// authorise lets deviceID enrol, as authorised at at.
func (e *env) authorise(deviceID string, at time.Time) {
	e.srv.mu.Lock()
	e.srv.authorised[deviceID] = at
	e.srv.mu.Unlock()
}

// enroll authorises deviceID now and runs its whole enrolment over the network: key, CSR,
// Enroll without a client certificate, and checking the answer.
func (e *env) enroll(deviceID string) Credentials {
	e.t.Helper()
	e.authorise(deviceID, e.clock.Now())
	creds, err := e.tryEnroll(deviceID)
	if err != nil {
		e.t.Fatalf("enrol %s: %v", deviceID, err)
	}
	return creds
}

func (e *env) tryEnroll(deviceID string) (Credentials, error) {
	key, err := GenerateKey()
	if err != nil {
		return Credentials{}, err
	}
	csr, err := CreateCSR(key, deviceID)
	if err != nil {
		return Credentials{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := e.dial(nil).Enroll(ctx, &vigilv1.EnrollRequest{DeviceId: deviceID, CertificateRequest: csr})
	if err != nil {
		return Credentials{}, err
	}
	return AcceptEnrolment(key, resp.GetCertificate(), resp.GetCaCertificates(),
		[]*x509.Certificate{e.ca.Certificate()}, Device(deviceID), e.clock.Now())
}

func getTask(c vigilv1.CoordinatorClient, deviceID string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := c.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: deviceID})
	return err
}

func tlsCert(c Credentials) *tls.Certificate {
	tc := c.TLSCertificate()
	return &tc
}
