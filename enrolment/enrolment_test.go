package enrolment

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// testAuthority is an authority directory served over TLS on loopback, and a root of trust
// whose enrolment role is the authority's key.
type testAuthority struct {
	dir  *Dir
	api  vigilv1.EnrolmentClient
	root *release.Root
}

func newTestAuthority(t *testing.T) *testAuthority {
	t.Helper()
	now := time.Now()
	dir, err := InitDir(filepath.Join(t.TempDir(), "enrol"), []string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Key: dir.Key, Tokens: dir.Tokens})
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(ServerOptions(dir.TLS)...)
	a.RegisterService(s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	ca, err := pki.ReadCertificates(dir.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(
		pki.ClientTLS(nil, pki.Credentials{Roots: ca}.RootPool(), pki.EnrolmentAuthority("")))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
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
	return &testAuthority{dir: dir, api: vigilv1.NewEnrolmentClient(conn), root: root}
}

func (ta *testAuthority) token(t *testing.T, device string) string {
	t.Helper()
	tok, err := ta.dir.Tokens.Issue(device, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func request(t *testing.T, key *sig.PrivateKey, device, token, region string) *vigilv1.RegisterRequest {
	t.Helper()
	req := &vigilv1.RegisterRequest{DeviceId: device, Token: token, Region: region}
	if err := SignRegistration(req, key); err != nil {
		t.Fatal(err)
	}
	return req
}

func wantStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	if status.Code(err) != code || vigilv1.Reason(err) != reason {
		t.Fatalf("got %v (code %v, reason %q), want code %v reason %q", err, status.Code(err), vigilv1.Reason(err), code, reason)
	}
}

func TestRegisterIssuesRecordOnce(t *testing.T) {
	ta := newTestAuthority(t)
	ctx := context.Background()
	key, _ := sig.GenerateKey(nil)
	req := request(t, key, "laptop-7", ta.token(t, "laptop-7"), "eu")
	resp, err := ta.api.Register(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec, err := ta.root.VerifyDeviceRecord(resp.GetDeviceRecord(), now)
	if err != nil {
		t.Fatal(err)
	}
	if rec.DeviceID != "laptop-7" || rec.Region != "eu" || !rec.Key().Equal(key.Public()) {
		t.Fatalf("record %+v does not name the device, region and key registered", rec)
	}
	// Dated when the token was issued (just before), valid for a year from registration, give
	// or take the second the record's times are truncated to.
	if d := rec.Expires.Sub(rec.Issued); d < RecordValidity || d > RecordValidity+time.Second {
		t.Fatalf("record valid for %v, want %v", d, RecordValidity)
	}
	// The token worked once: the same request again, or another key with it, is refused.
	_, err = ta.api.Register(ctx, req)
	wantStatus(t, err, codes.Unauthenticated, pki.ReasonTokenUsed)
	other, _ := sig.GenerateKey(nil)
	_, err = ta.api.Register(ctx, request(t, other, "laptop-7", req.GetToken(), "eu"))
	wantStatus(t, err, codes.Unauthenticated, pki.ReasonTokenUsed)
}

func TestRegisterRefusals(t *testing.T) {
	ta := newTestAuthority(t)
	key, _ := sig.GenerateKey(nil)
	other, _ := sig.GenerateKey(nil)
	tok := ta.token(t, "dev-a")
	tokB := ta.token(t, "dev-b")
	for _, tc := range []struct {
		name   string
		req    func() *vigilv1.RegisterRequest
		code   codes.Code
		reason string
	}{
		{"token of another device", func() *vigilv1.RegisterRequest { return request(t, key, "dev-a", tokB, "eu") },
			codes.PermissionDenied, pki.ReasonTokenWrongDevice},
		{"unknown token", func() *vigilv1.RegisterRequest { return request(t, key, "dev-a", strings.Repeat("A", 43), "eu") },
			codes.Unauthenticated, pki.ReasonTokenUnknown},
		{"malformed token", func() *vigilv1.RegisterRequest { return request(t, key, "dev-a", "short", "eu") },
			codes.Unauthenticated, pki.ReasonTokenUnknown},
		{"no token", func() *vigilv1.RegisterRequest { return request(t, key, "dev-a", "", "eu") },
			codes.InvalidArgument, ReasonInvalidArgument},
		{"oversized token", func() *vigilv1.RegisterRequest {
			return request(t, key, "dev-a", strings.Repeat("A", vigilv1.MaxTokenLen+1), "eu")
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"bad device ID", func() *vigilv1.RegisterRequest { return request(t, key, "dev/a", tok, "eu") },
			codes.InvalidArgument, ReasonInvalidArgument},
		{"no region", func() *vigilv1.RegisterRequest { return request(t, key, "dev-a", tok, "") },
			codes.InvalidArgument, ReasonInvalidArgument},
		{"flipped proof", func() *vigilv1.RegisterRequest {
			r := request(t, key, "dev-a", tok, "eu")
			r.Proof[10] ^= 1
			return r
		}, codes.Unauthenticated, ReasonBadProof},
		{"proof by another key", func() *vigilv1.RegisterRequest {
			r := request(t, other, "dev-a", tok, "eu")
			r.SigningKey = key.Public().Bytes()
			return r
		}, codes.Unauthenticated, ReasonBadProof},
		{"proof of another region", func() *vigilv1.RegisterRequest {
			r := request(t, key, "dev-a", tok, "us")
			r.Region = "eu"
			return r
		}, codes.Unauthenticated, ReasonBadProof},
		{"proof of size zero", func() *vigilv1.RegisterRequest {
			r := request(t, key, "dev-a", tok, "eu")
			r.Proof = nil
			return r
		}, codes.InvalidArgument, ReasonInvalidArgument},
		{"not a public key", func() *vigilv1.RegisterRequest {
			r := request(t, key, "dev-a", tok, "eu")
			r.SigningKey = r.SigningKey[:100]
			return r
		}, codes.InvalidArgument, ReasonBadSigningKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ta.api.Register(context.Background(), tc.req())
			wantStatus(t, err, tc.code, tc.reason)
		})
	}
	// None of the refusals used a token up.
	for _, r := range []*vigilv1.RegisterRequest{request(t, key, "dev-a", tok, "eu"), request(t, other, "dev-b", tokB, "us")} {
		if _, err := ta.api.Register(context.Background(), r); err != nil {
			t.Fatalf("%s after the refusals: %v", r.GetDeviceId(), err)
		}
	}
}

func TestRecordProof(t *testing.T) {
	key, _ := sig.GenerateKey(nil)
	other, _ := sig.GenerateKey(nil)
	csr := []byte("certificate request")
	proof, err := ProveRecord(key, "dev-a", csr)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRecordProof(key.Public(), "dev-a", csr, proof); err != nil {
		t.Fatal(err)
	}
	reg := &vigilv1.RegisterRequest{DeviceId: "dev-a", Token: "t", Region: "eu"}
	if err := SignRegistration(reg, key); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		key      *sig.PublicKey
		device   string
		csr      []byte
		proof    []byte
		wantFail bool
	}{
		{"good", key.Public(), "dev-a", csr, proof, false},
		{"other key", other.Public(), "dev-a", csr, proof, true},
		{"other device", key.Public(), "dev-b", csr, proof, true},
		{"other request", key.Public(), "dev-a", []byte("certificate requesT"), proof, true},
		// Field boundaries are encoded: moving a byte from one field to the next changes the message.
		{"shifted boundary", key.Public(), "dev-ac", []byte("ertificate request"), proof, true},
		// A registration proof is not a record proof, even over the same bytes.
		{"registration proof", key.Public(), "dev-a", csr, reg.GetProof(), true},
	} {
		err := VerifyRecordProof(tc.key, tc.device, tc.csr, tc.proof)
		if (err != nil) != tc.wantFail || err != nil && !errors.Is(err, sig.ErrBadSignature) {
			t.Errorf("%s: %v, want failure %v", tc.name, err, tc.wantFail)
		}
	}
}

func TestInitDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enrol")
	d, err := InitDir(path, []string{"127.0.0.1", "localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Join(path, KeyFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("signing key: %v, %v", info, err)
	}
	pub, err := sig.ReadPublicKeyFile(filepath.Join(path, PublicKeyFile))
	if err != nil || !pub.Equal(d.Key.Public()) {
		t.Fatalf("public key file: %v", err)
	}
	if id, err := d.TLS.Identity(); err != nil || id != pki.EnrolmentAuthority(ServerID) {
		t.Fatalf("TLS identity %v, %v", id, err)
	}
	if _, err := InitDir(path, nil, time.Now()); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("second InitDir: %v", err)
	}
	if _, err := OpenDir(filepath.Join(path, "missing")); err == nil || !strings.Contains(err.Error(), "vigil enrol init") {
		t.Fatalf("OpenDir of nothing: %v", err)
	}
	if _, err := New(Config{Key: d.Key}); err == nil {
		t.Fatal("an authority without a token store")
	}
}

// TestAttackTokenOutlivesRevocation: a token for dev-x issued before `vigil pki revoke dev-x`
// and redeemed after it must not bring dev-x back: the coordinator's Enroller refuses the
// record. A token issued after the revocation re-enrols the device.
func TestAttackTokenOutlivesRevocation(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	revokedAt := t0.Add(time.Minute)
	for _, tc := range []struct {
		name    string
		issued  time.Time // of the token
		revoked time.Time // zero: revokedAt
		refused bool
	}{
		{"token issued before the revocation", t0, time.Time{}, true},
		{"token issued with the revocation", revokedAt, time.Time{}, true},
		{"token issued after the revocation", revokedAt.Add(time.Second), time.Time{}, false},
		// Records carry whole seconds: `vigil pki revoke` then `vigil enrol token` in one second.
		{"token issued after the revocation in its second", revokedAt.Add(108 * time.Millisecond), revokedAt.Add(4 * time.Millisecond), false},
		{"token issued on a second the revocation follows", revokedAt, revokedAt.Add(500 * time.Millisecond), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			revokedAt := revokedAt
			if !tc.revoked.IsZero() {
				revokedAt = tc.revoked
			}
			dir := t.TempDir()
			tokens, err := pki.OpenTokens(filepath.Join(dir, "tokens.json"))
			if err != nil {
				t.Fatal(err)
			}
			tok, err := tokens.Issue("dev-x", DefaultTokenTTL, tc.issued)
			if err != nil {
				t.Fatal(err)
			}
			revs, err := pki.OpenRevocations(filepath.Join(dir, "revoked.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := revs.RevokeIdentity(pki.Device("dev-x"), revokedAt); err != nil {
				t.Fatal(err)
			}
			// Whoever holds the token redeems it after the revocation.
			redeemed := revokedAt.Add(time.Hour)
			authKey, err := sig.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			a, err := New(Config{Key: authKey, Tokens: tokens, Now: func() time.Time { return redeemed }})
			if err != nil {
				t.Fatal(err)
			}
			devKey, err := sig.GenerateKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := a.Register(context.Background(), request(t, devKey, "dev-x", tok, "eu"))
			if err != nil {
				t.Fatalf("the authority refused the token: %v", err)
			}
			rec := decodeRecord(t, authKey.Public(), resp.GetDeviceRecord(), redeemed)
			// The coordinator's side: the record's issue time is the enrolment's authorisation.
			ca, err := pki.NewCA("Vigil test CA", 0, t0)
			if err != nil {
				t.Fatal(err)
			}
			enroller, err := pki.NewEnroller(pki.EnrollerConfig{CA: ca, Revocations: revs})
			if err != nil {
				t.Fatal(err)
			}
			tlsKey, err := pki.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			csr, err := pki.CreateCSR(tlsKey, "dev-x")
			if err != nil {
				t.Fatal(err)
			}
			iss, err := enroller.Enroll("dev-x", rec.Issued, csr, redeemed.Add(time.Minute))
			switch {
			case tc.refused && !errors.Is(err, pki.ErrRevoked):
				t.Fatalf("record issued %s, revoked %s: enrolment gave %v, want %v",
					rec.Issued.Format(time.RFC3339), revokedAt.Format(time.RFC3339), err, pki.ErrRevoked)
			case !tc.refused && err != nil:
				t.Fatalf("a token issued after the revocation: %v", err)
			case !tc.refused && iss.Identity != pki.Device("dev-x"):
				t.Fatalf("certificate for %s", iss.Identity)
			}
		})
	}
}

// decodeRecord verifies a device record under a root whose enrolment role is key.
func decodeRecord(t *testing.T, key *sig.PublicKey, data []byte, now time.Time) *release.DeviceRecord {
	t.Helper()
	other, err := sig.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	one := func(k *sig.PublicKey) release.RoleSpec {
		return release.RoleSpec{Keys: []*sig.PublicKey{k}, Threshold: 1}
	}
	root, err := release.NewRoot(1, now.Add(time.Hour), release.RootRoles{
		Root: one(other.Public()), Release: one(other.Public()), Timestamp: one(other.Public()),
		Trustees: one(other.Public()), Enrolment: one(key), Privacy: one(other.Public()),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := root.VerifyDeviceRecord(data, now)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestRecordOfTokenRedeemedBeforeItsDate redeems a token within the second it was issued in,
// before its date (the next whole second), and on a clock stepped back: the record is dated
// by the token, valid for RecordValidity from that date, and the token file stays readable.
func TestRecordOfTokenRedeemedBeforeItsDate(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "tokens.json")
	tokens, err := pki.OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, redeemed := range []time.Time{t0.Add(400 * time.Millisecond), t0.Add(-time.Hour)} {
		tok, err := tokens.Issue("dev-x", time.Hour, t0.Add(300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		authKey, _ := sig.GenerateKey(nil)
		a, err := New(Config{Key: authKey, Tokens: tokens, Now: func() time.Time { return redeemed }})
		if err != nil {
			t.Fatal(err)
		}
		devKey, _ := sig.GenerateKey(nil)
		resp, err := a.Register(context.Background(), request(t, devKey, "dev-x", tok, "eu"))
		if err != nil {
			t.Fatal(err)
		}
		rec := decodeRecord(t, authKey.Public(), resp.GetDeviceRecord(), redeemed)
		if want := t0.Add(time.Second); !rec.Issued.Equal(want) || !rec.Expires.Equal(want.Add(RecordValidity)) {
			t.Errorf("redeemed at %s: record issued %s, expires %s; want %s and a validity of %v from it",
				redeemed.Format(time.RFC3339Nano), rec.Issued, rec.Expires, want, RecordValidity)
		}
		if _, err := pki.OpenTokens(path); err != nil {
			t.Fatal(err)
		}
	}
}
