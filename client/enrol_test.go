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
	revs      *pki.Revocations
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
	return &enrolEnv{authority: dir, coord: coord, revs: revs, cfg: EnrolConfig{
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

// otherRoot returns a root whose enrolment key is not the test authority's: another
// organisation's root.json, or an old one.
func otherRoot(t *testing.T) *release.Root {
	t.Helper()
	k, _ := sig.GenerateKey(nil)
	one := release.RoleSpec{Keys: []*sig.PublicKey{k.Public()}, Threshold: 1}
	root, err := release.NewRoot(1, time.Now().Add(time.Hour), release.RootRoles{
		Root: one, Release: one, Timestamp: one, Trustees: one, Enrolment: one, Privacy: one,
	})
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func redeemed(t *testing.T, e *enrolEnv) int {
	t.Helper()
	s, err := e.authority.Tokens.Stats(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s.Redeemed
}

// TestEnrolKeepsRecordUnderWrongRoot registers a device pinning another root than the one
// whose enrolment key signs its record: the token is spent, so the record must be kept (never
// used) with its key, and a run with the right root must verify it and enrol without a new
// token. Runs with a wrong root or none neither use the kept record nor register again.
func TestEnrolKeepsRecordUnderWrongRoot(t *testing.T) {
	e := newEnrolEnv(t, "laptop-7")
	ctx := context.Background()
	wrong := e.cfg
	wrong.Root = otherRoot(t)
	kept := filepath.Join(e.cfg.Dir, UnverifiedRecordFile)
	_, err := Enrol(ctx, wrong)
	if !errors.Is(err, ErrRecordUnverified) || !strings.Contains(err.Error(), kept) || !strings.Contains(err.Error(), "no new token needed") {
		t.Fatalf("enrol under another root: %v, want ErrRecordUnverified naming %s", err, kept)
	}
	record, err := os.ReadFile(kept)
	if err != nil {
		t.Fatalf("the record the token bought is lost: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, RecordFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a record that does not verify was saved as the device's record: %v", err)
	}
	if e.coord.calls.Load() != 0 {
		t.Fatal("the device presented a record that does not verify under its root")
	}

	// Again with the wrong root, and with none: the kept record is not used, and a new token
	// is not spent.
	fresh, err := e.authority.Tokens.Issue("laptop-7", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wrong.Token = fresh
	noRoot := e.cfg
	noRoot.Root, noRoot.Token = nil, fresh
	for _, cfg := range []EnrolConfig{wrong, noRoot} {
		if _, err := Enrol(ctx, cfg); !errors.Is(err, ErrRecordUnverified) || !strings.Contains(err.Error(), kept) {
			t.Fatalf("enrol again with the kept record unverified: %v", err)
		}
	}
	if n := redeemed(t, e); n != 1 || e.coord.calls.Load() != 0 {
		t.Fatalf("%d tokens redeemed, %d enrolments: the device registered again or used the unverified record", n, e.coord.calls.Load())
	}

	// The right root verifies it: no authority, no token.
	right := e.cfg
	right.Token, right.Authority = "", nil
	id, err := Enrol(ctx, right)
	if err != nil {
		t.Fatal(err)
	}
	if string(id.Record) != string(record) {
		t.Fatal("the device enrolled with another record than the one it kept")
	}
	if _, err := os.Stat(kept); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the verified record is still kept as unverified: %v", err)
	}
	if _, err := LoadIdentity(e.cfg.Dir); err != nil {
		t.Fatal(err)
	}
}

// TestEnrolRegistersAgainAfterRevokedRecord: a device holds its record (its coordinator was
// down) and is revoked before it enrols. The coordinator refuses the record REVOKED: the
// device must say it was revoked and set the record aside, so that the next run with a new
// token registers again instead of presenting the refused record for ever.
func TestEnrolRegistersAgainAfterRevokedRecord(t *testing.T) {
	e := newEnrolEnv(t, "laptop-7")
	ctx := context.Background()
	e.coord.failures.Store(1)
	if _, err := Enrol(ctx, e.cfg); status.Code(errors.Unwrap(err)) != codes.Unavailable && status.Code(err) != codes.Unavailable {
		t.Fatalf("enrol with the coordinator down: %v", err)
	}
	old, err := os.ReadFile(filepath.Join(e.cfg.Dir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	// Revoked after the record's date (a whole second up to a second ahead), and a new token
	// issued after that; the device's clock runs with them, so that the certificate, which
	// starts after the revocation, is already valid.
	now := time.Now()
	if err := e.revs.RevokeIdentity(pki.Device("laptop-7"), now.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	fresh, err := e.authority.Tokens.Issue("laptop-7", time.Hour, now.Add(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Token = fresh
	cfg.Now = func() time.Time { return time.Now().Add(5 * time.Second) }

	_, err = Enrol(ctx, cfg)
	if !errors.Is(err, ErrRecordRevoked) || vigilv1.Reason(err) != pki.ReasonRevoked || !strings.Contains(err.Error(), "vigil enrol token") {
		t.Fatalf("enrol with a revoked record: %v, want ErrRecordRevoked asking for a new token", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, RecordFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused record is still the device's record: %v", err)
	}
	aside, _ := filepath.Glob(filepath.Join(e.cfg.Dir, RevokedRecordPrefix+"*.json"))
	if len(aside) != 1 || !strings.Contains(err.Error(), aside[0]) {
		t.Fatalf("refused records kept %v; the error: %v", aside, err)
	}
	if data, _ := os.ReadFile(aside[0]); string(data) != string(old) {
		t.Fatal("the record set aside is not the refused one")
	}
	if n := redeemed(t, e); n != 1 {
		t.Fatalf("%d tokens redeemed before the new registration, want 1", n)
	}

	id, err := Enrol(ctx, cfg)
	if err != nil {
		t.Fatalf("enrol with a new token after the refusal: %v", err)
	}
	if string(id.Record) == string(old) || redeemed(t, e) != 2 {
		t.Fatal("the device did not register again with its new token")
	}
}
