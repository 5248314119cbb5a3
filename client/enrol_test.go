package client

import (
	"context"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// enrolCoordinator is the enrolment half of a coordinator: it checks the device record under
// the root and the record proof, and issues a TLS certificate. failures makes its next calls
// fail, as a coordinator that is down would.
type enrolCoordinator struct {
	vigilv1.UnimplementedCoordinatorServer
	root     *release.Root
	enroller *pki.Enroller
	failures atomic.Int32
	calls    atomic.Int32
}

func (c *enrolCoordinator) Enroll(ctx context.Context, req *vigilv1.EnrollRequest) (*vigilv1.EnrollResponse, error) {
	c.calls.Add(1)
	if c.failures.Add(-1) >= 0 {
		return nil, status.Error(codes.Unavailable, "down")
	}
	rec, err := c.root.VerifyDeviceRecord(req.GetDeviceRecord(), time.Now())
	if err != nil || rec.DeviceID != req.GetDeviceId() {
		return nil, status.Errorf(codes.Unauthenticated, "record: %v", err)
	}
	if err := enrolment.VerifyRecordProof(rec.Key(), req.GetDeviceId(), req.GetCertificateRequest(), req.GetRecordProof()); err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	iss, err := c.enroller.Enroll(req.GetDeviceId(), rec.Issued, req.GetCertificateRequest(), time.Now())
	if err != nil {
		return nil, pki.StatusError(err)
	}
	return &vigilv1.EnrollResponse{Certificate: iss.Certificate, CaCertificates: iss.CACertificates}, nil
}

type enrolEnv struct {
	authority *enrolment.Dir
	coord     *enrolCoordinator
	cfg       EnrolConfig
}

func serve(t *testing.T, s *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

func dial(t *testing.T, addr string, opt grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// newEnrolEnv starts an enrolment authority over TLS and a coordinator's enrolment, both on
// loopback, and returns the configuration a device would enrol with.
func newEnrolEnv(t *testing.T, device string) *enrolEnv {
	t.Helper()
	now := time.Now()
	dir, err := enrolment.InitDir(filepath.Join(t.TempDir(), "enrol"), []string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := enrolment.New(enrolment.Config{Key: dir.Key, Tokens: dir.Tokens})
	if err != nil {
		t.Fatal(err)
	}
	as := grpc.NewServer(enrolment.ServerOptions(dir.TLS)...)
	a.RegisterService(as)
	authCA, _ := pki.ReadCertificates(dir.CACertPath())
	authConn := dial(t, serve(t, as), grpc.WithTransportCredentials(credentials.NewTLS(
		pki.ClientTLS(nil, pki.Credentials{Roots: authCA}.RootPool(), pki.EnrolmentAuthority("")))))

	other, _ := sig.GenerateKey(nil)
	one := func(k *sig.PublicKey) release.RoleSpec {
		return release.RoleSpec{Keys: []*sig.PublicKey{k}, Threshold: 1}
	}
	root, err := release.NewRoot(1, now.Add(time.Hour), release.RootRoles{
		Root: one(other.Public()), Release: one(other.Public()), Timestamp: one(other.Public()),
		Trustees: one(other.Public()), Enrolment: one(dir.Key.Public()), Privacy: one(other.Public()),
	})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test CA", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	revs, err := pki.OpenRevocations(filepath.Join(t.TempDir(), "revoked.json"))
	if err != nil {
		t.Fatal(err)
	}
	enroller, err := pki.NewEnroller(pki.EnrollerConfig{CA: ca, Revocations: revs})
	if err != nil {
		t.Fatal(err)
	}
	coord := &enrolCoordinator{root: root, enroller: enroller}
	cs := grpc.NewServer()
	vigilv1.RegisterCoordinatorServer(cs, coord)
	coordConn := dial(t, serve(t, cs), grpc.WithTransportCredentials(insecure.NewCredentials()))

	token, err := dir.Tokens.Issue(device, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	return &enrolEnv{authority: dir, coord: coord, cfg: EnrolConfig{
		Dir: filepath.Join(t.TempDir(), device), DeviceID: device, Region: "eu", Token: token,
		Authority: vigilv1.NewEnrolmentClient(authConn), Coordinator: vigilv1.NewCoordinatorClient(coordConn),
		Bootstrap: []*x509.Certificate{ca.Certificate()}, Root: root,
	}}
}

// TestEnrolKeepsKeysAcrossRestart enrols a device whose coordinator is down at first: the
// device keeps the signing key and record it got, enrols later without a new token, and a
// restarted device loads the same identity.
func TestEnrolKeepsKeysAcrossRestart(t *testing.T) {
	e := newEnrolEnv(t, "laptop-7")
	ctx := context.Background()
	if _, err := LoadIdentity(e.cfg.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("identity before enrolment: %v, want fs.ErrNotExist", err)
	}
	e.coord.failures.Store(1)
	if _, err := Enrol(ctx, e.cfg); status.Code(errors.Unwrap(err)) != codes.Unavailable && status.Code(err) != codes.Unavailable {
		t.Fatalf("enrol with the coordinator down: %v", err)
	}
	key, err := sig.ReadPrivateKeyFile(filepath.Join(e.cfg.Dir, SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if info, _ := os.Stat(filepath.Join(e.cfg.Dir, SigningKeyFile)); info.Mode().Perm() != 0o600 {
		t.Fatalf("signing key mode %v, want 0600", info.Mode().Perm())
	}

	// The token is used up; the saved record makes it unnecessary.
	resumed := e.cfg
	resumed.Token, resumed.Authority = "", nil
	id, err := Enrol(ctx, resumed)
	if err != nil {
		t.Fatal(err)
	}
	if !id.SigningKey.Public().Equal(key.Public()) || id.Region != "eu" {
		t.Fatalf("the enrolled identity has key %s in %q, the device generated %s", id.SigningKey.ID().Short(), id.Region, key.ID().Short())
	}
	if _, err := e.coord.root.VerifyDeviceRecord(id.Record, time.Now()); err != nil {
		t.Fatal(err)
	}

	// A restart loads the same identity from disk.
	again, err := LoadIdentity(e.cfg.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.SigningKey.Public().Equal(key.Public()) || string(again.Record) != string(id.Record) ||
		!again.TLS.Leaf().Equal(id.TLS.Leaf()) || again.DeviceID != "laptop-7" {
		t.Fatal("the reloaded identity differs from the enrolled one")
	}
	if _, err := again.TLS.Verify(time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestEnrolRefusals(t *testing.T) {
	e := newEnrolEnv(t, "laptop-7")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		change func(*EnrolConfig)
		want   string
	}{
		{"no token", func(c *EnrolConfig) { c.Token = "" }, "one-time token"},
		{"no region", func(c *EnrolConfig) { c.Region = "" }, "region"},
		{"bad device ID", func(c *EnrolConfig) { c.DeviceID = "a b" }, "device ID"},
		{"token of another device", func(c *EnrolConfig) { c.DeviceID = "laptop-8" }, "TOKEN_WRONG_DEVICE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.cfg
			cfg.Dir = filepath.Join(t.TempDir(), "device")
			tc.change(&cfg)
			_, err := Enrol(ctx, cfg)
			if err == nil || !strings.Contains(err.Error()+" "+vigilv1.Reason(errors.Unwrap(err)), tc.want) {
				t.Fatalf("Enrol = %v, want mention of %q", err, tc.want)
			}
		})
	}
	// A record for another key (a copied record file) is refused before anything is sent.
	dir := filepath.Join(t.TempDir(), "copied")
	cfg := e.cfg
	cfg.Dir = dir
	if _, err := Enrol(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, SigningKeyFile))
	calls := e.coord.calls.Load()
	if _, err := Enrol(ctx, cfg); err == nil || !strings.Contains(err.Error(), "names key") {
		t.Fatalf("enrol with a record of another key: %v", err)
	}
	if e.coord.calls.Load() != calls {
		t.Fatal("the device sent a record that does not name its key")
	}
}
