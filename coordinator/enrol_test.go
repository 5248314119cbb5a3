package coordinator_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// org is a root of trust whose enrolment role belongs to an authority the coordinator does not
// run: the coordinator gets the root, the CA and the release and timestamp keys, never
// authority.
type org struct {
	keys      *release.KeySet
	authority *sig.PrivateKey
	root      *release.Root
}

func newOrg(t *testing.T) *org {
	t.Helper()
	ks, err := release.NewKeySet(rand.Reader, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	root, err := release.ParseTrustedRoot(ks.RootEnvelope)
	if err != nil {
		t.Fatal(err)
	}
	o := &org{keys: ks, authority: ks.Enrolment, root: root}
	ks.Enrolment = nil // the coordinator's side of the organisation
	return o
}

// record is what the enrolment authority issues for a registered device.
func (o *org) record(t *testing.T, device, region string, key *sig.PublicKey, issued time.Time) []byte {
	t.Helper()
	rec, err := release.Sign(release.NewDeviceRecord(device, region, key, issued, issued.Add(enrolment.RecordValidity)), o.authority)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func enrolRequest(t *testing.T, device, region string, record []byte, key *sig.PrivateKey, csr []byte) *vigilv1.EnrollRequest {
	t.Helper()
	proof, err := enrolment.ProveRecord(key, device, csr)
	if err != nil {
		t.Fatal(err)
	}
	return &vigilv1.EnrollRequest{DeviceId: device, Region: region, CertificateRequest: csr, DeviceRecord: record, RecordProof: proof}
}

func wantRefusal(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code || coordinator.Reason(err) != reason {
		t.Fatalf("got %v (code %v, reason %q), want code %v reason %q", err, status.Code(err), coordinator.Reason(err), code, reason)
	}
}

func TestEnrollChecksDeviceRecord(t *testing.T) {
	o := newOrg(t)
	f := start(t, coordinator.Config{Root: o.root})
	now := time.Now()
	key, _ := sig.GenerateKey(nil)
	other, _ := sig.GenerateKey(nil)
	good := o.record(t, "dev-a", "eu", key.Public(), now)
	signedBy := func(k *sig.PrivateKey) []byte {
		rec, err := release.Sign(release.NewDeviceRecord("dev-a", "eu", key.Public(), now, now.Add(time.Hour)), k)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	for _, tc := range []struct {
		name   string
		req    *vigilv1.EnrollRequest
		code   codes.Code
		reason string
	}{
		{"no record", &vigilv1.EnrollRequest{DeviceId: "dev-a"}, codes.Unauthenticated, coordinator.ReasonNoRecord},
		{"signed by the release key", enrolRequest(t, "dev-a", "eu", signedBy(o.keys.Release), key, nil),
			codes.Unauthenticated, coordinator.ReasonBadRecord},
		{"signed by the root key", enrolRequest(t, "dev-a", "eu", signedBy(o.keys.Root), key, nil),
			codes.Unauthenticated, coordinator.ReasonBadRecord},
		{"expired", enrolRequest(t, "dev-a", "eu", o.record(t, "dev-a", "eu", key.Public(), now.Add(-enrolment.RecordValidity-time.Minute)), key, nil),
			codes.Unauthenticated, coordinator.ReasonBadRecord},
		{"not a record", enrolRequest(t, "dev-a", "eu", []byte(`{"payload":"x"}`), key, nil),
			codes.Unauthenticated, coordinator.ReasonBadRecord},
		{"another device's record", enrolRequest(t, "dev-b", "eu", good, key, nil),
			codes.PermissionDenied, coordinator.ReasonRecordMismatch},
		{"another region", enrolRequest(t, "dev-a", "us", good, key, nil),
			codes.PermissionDenied, coordinator.ReasonRecordMismatch},
		{"proof by another key", enrolRequest(t, "dev-a", "eu", good, other, nil),
			codes.Unauthenticated, coordinator.ReasonBadRecordProof},
		{"proof of another request", func() *vigilv1.EnrollRequest {
			r := enrolRequest(t, "dev-a", "eu", good, key, []byte("one request"))
			r.CertificateRequest = []byte("another request")
			return r
		}(), codes.Unauthenticated, coordinator.ReasonBadRecordProof},
		{"no proof", &vigilv1.EnrollRequest{DeviceId: "dev-a", DeviceRecord: good},
			codes.Unauthenticated, coordinator.ReasonBadRecordProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.api.Enroll(context.Background(), tc.req)
			wantRefusal(t, err, tc.code, tc.reason)
		})
	}
	ctx := context.Background()
	if _, err := f.api.Enroll(ctx, enrolRequest(t, "dev-a", "", good, key, nil)); err != nil {
		t.Fatalf("enrolment with the authority's record: %v", err)
	}
	// The device registered again (a new key): its newer record replaces the older one, which
	// can then no longer come back.
	key2, _ := sig.GenerateKey(nil)
	newer := o.record(t, "dev-a", "eu", key2.Public(), now.Add(time.Minute))
	if _, err := f.api.Enroll(ctx, enrolRequest(t, "dev-a", "eu", newer, key2, nil)); err != nil {
		t.Fatal(err)
	}
	_, err := f.api.Enroll(ctx, enrolRequest(t, "dev-a", "eu", good, key, nil))
	wantRefusal(t, err, codes.FailedPrecondition, coordinator.ReasonStaleRecord)
}

// tlsFixture is a coordinator serving mutual TLS behind pki's guard, with its own CA, as
// `vigil coordinator` runs it.
type tlsFixture struct {
	ca    *pki.CA
	addr  string
	cfg   coordinator.Config
	coord *coordinator.Coordinator
	now   func() time.Time
}

func startTLS(t *testing.T, root *release.Root) *tlsFixture {
	t.Helper()
	return startTLSAt(t, root, time.Now)
}

// startTLSAt is startTLS on the clock clock: the coordinator, its guard and both ends of TLS
// judge certificates by it.
func startTLSAt(t *testing.T, root *release.Root, clock func() time.Time) *tlsFixture {
	t.Helper()
	now := clock()
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
	serverKey, _ := pki.GenerateKey()
	serverCert, err := ca.Issue(pki.CertSpec{Identity: pki.Coordinator("coord"), PublicKey: serverKey.Public(), Hosts: []string{"127.0.0.1"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := pki.NewGuard(pki.GuardConfig{
		Roles: []pki.Role{pki.RoleDevice}, Unauthenticated: []string{vigilv1.Coordinator_Enroll_FullMethodName}, Revocations: revs, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := coordinator.Config{Spec: spec, FeatureSet: keystroke.TimingFeatureSet, Store: st, Root: root, Enroller: enroller,
		DevicesPerRound: 2, MinUpdates: 2, LongPoll: 100 * time.Millisecond, Now: clock}
	cfg.Privacy.InsecureNoDP = true
	c, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	creds := pki.Credentials{Key: serverKey, Chain: []*x509.Certificate{serverCert}, Roots: []*x509.Certificate{ca.Certificate()}}
	serverTLS := pki.ServerTLS(creds.TLSCertificate(), ca.Pool())
	serverTLS.Time = clock
	srv := grpc.NewServer(append(append(coordinator.ServerOptions(), guard.ServerOptions()...), grpc.Creds(credentials.NewTLS(serverTLS)))...)
	c.Register(srv)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return &tlsFixture{ca: ca, addr: lis.Addr().String(), cfg: cfg, coord: c, now: clock}
}

func (f *tlsFixture) dial(t *testing.T, cert *tls.Certificate) vigilv1.CoordinatorClient {
	t.Helper()
	return f.dialTLS(t, pki.ClientTLS(cert, f.ca.Pool(), pki.Coordinator("")))
}

// dialTLS connects with tc, which judges the coordinator's certificate by the fixture's clock.
func (f *tlsFixture) dialTLS(t *testing.T, tc *tls.Config) vigilv1.CoordinatorClient {
	t.Helper()
	tc.Time = f.now
	conn, err := grpc.NewClient(f.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vigilv1.NewCoordinatorClient(conn)
}

// TestAttackCoordinatorInventsDevice is the Sybil attack from the coordinator's side: it holds
// its CA and the release and timestamp keys, but not the enrolment authority's, and tries to
// register devices of its own to fill a round. Every record it can make is refused, and a
// device certificate it mints with its own CA, which passes TLS and the guard, still names no
// enrolled device. A genuine device enrols in the same setup.
func TestAttackCoordinatorInventsDevice(t *testing.T) {
	o := newOrg(t)
	f := startTLS(t, o.root)
	ctx := context.Background()
	now := time.Now()
	anon := f.dial(t, nil)
	ghostKey, _ := sig.GenerateKey(nil)
	tlsKey, _ := pki.GenerateKey()
	csr, err := pki.CreateCSR(tlsKey, "ghost")
	if err != nil {
		t.Fatal(err)
	}
	forge := func(signer *sig.PrivateKey) []byte {
		rec, err := release.Sign(release.NewDeviceRecord("ghost", "eu", ghostKey.Public(), now, now.Add(enrolment.RecordValidity)), signer)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	ownKey, _ := sig.GenerateKey(nil)
	genuineKey, _ := sig.GenerateKey(nil)
	genuine := o.record(t, "laptop-7", "eu", genuineKey.Public(), now)
	for _, tc := range []struct {
		name   string
		req    *vigilv1.EnrollRequest
		code   codes.Code
		reason string
	}{
		{"record signed with the release key", enrolRequest(t, "ghost", "eu", forge(o.keys.Release), ghostKey, csr),
			codes.Unauthenticated, coordinator.ReasonBadRecord},
		{"record signed with the timestamp key", enrolRequest(t, "ghost", "eu", forge(o.keys.Timestamp), ghostKey, csr),
			codes.Unauthenticated, coordinator.ReasonBadRecord},
		{"record signed with a key of its own", enrolRequest(t, "ghost", "eu", forge(ownKey), ghostKey, csr),
			codes.Unauthenticated, coordinator.ReasonBadRecord},
		{"no record, as the coordinator once enrolled devices", &vigilv1.EnrollRequest{DeviceId: "ghost", CertificateRequest: csr},
			codes.Unauthenticated, coordinator.ReasonNoRecord},
		{"a genuine device's record for an invented name", enrolRequest(t, "ghost", "eu", genuine, ghostKey, csr),
			codes.PermissionDenied, coordinator.ReasonRecordMismatch},
		{"a genuine device's record with the coordinator's key", enrolRequest(t, "laptop-7", "eu", genuine, ghostKey, csr),
			codes.Unauthenticated, coordinator.ReasonBadRecordProof},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := anon.Enroll(ctx, tc.req)
			wantRefusal(t, err, tc.code, tc.reason)
		})
	}

	// The CA is the coordinator's: it can mint a certificate for the invented device, which
	// passes TLS and the guard, but without a record the device is never registered, and an
	// update from it is refused.
	ghostCert, err := f.ca.Issue(pki.CertSpec{Identity: pki.Device("ghost"), PublicKey: tlsKey.Public()}, now)
	if err != nil {
		t.Fatal(err)
	}
	ghost := f.dial(t, &tls.Certificate{Certificate: [][]byte{ghostCert.Raw}, PrivateKey: tlsKey, Leaf: ghostCert})
	_, err = ghost.Enroll(ctx, &vigilv1.EnrollRequest{DeviceId: "ghost"})
	wantRefusal(t, err, codes.Unauthenticated, coordinator.ReasonNoRecord)
	_, err = ghost.Enroll(ctx, enrolRequest(t, "ghost", "eu", forge(o.keys.Release), ghostKey, nil))
	wantRefusal(t, err, codes.Unauthenticated, coordinator.ReasonBadRecord)
	_, err = ghost.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "ghost"})
	wantRefusal(t, err, codes.NotFound, coordinator.ReasonUnknownDevice)
	_, err = ghost.SubmitUpdate(ctx, &vigilv1.SubmitUpdateRequest{DeviceId: "ghost", Round: 1, Nonce: make([]byte, vigilv1.NonceSize),
		Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: 1, Values: []float64{0}}})
	wantRefusal(t, err, codes.NotFound, coordinator.ReasonUnknownDevice)

	// The genuine device, with the authority's record and its own key, enrols and gets a
	// certificate for its name only.
	gKey, _ := pki.GenerateKey()
	gcsr, _ := pki.CreateCSR(gKey, "laptop-7")
	resp, err := anon.Enroll(ctx, enrolRequest(t, "laptop-7", "eu", genuine, genuineKey, gcsr))
	if err != nil {
		t.Fatal(err)
	}
	creds, err := pki.AcceptEnrolment(gKey, resp.GetCertificate(), resp.GetCaCertificates(), []*x509.Certificate{f.ca.Certificate()}, pki.Device("laptop-7"), now)
	if err != nil {
		t.Fatal(err)
	}
	cert := creds.TLSCertificate()
	if _, err := f.dial(t, &cert).GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "laptop-7"}); err != nil {
		t.Fatalf("the genuine device: %v", err)
	}
}
