package pki

import (
	"context"
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

func TestCertificatesAfterRevocationAreNotBornRevoked(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	a, err := InitAuthority(dir, "ca", "coord", []string{"localhost"}, 0, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEnroller(EnrollerConfig{CA: a.CA, Revocations: a.Revocations})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := GenerateKey()
	csr, _ := CreateCSR(key, "dev-a")
	first, err := e.Enroll("dev-a", t0, csr, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := t0.Add(2 * time.Minute)
	if err := a.Revocations.RevokeIdentity(Device("dev-a"), revokedAt); err != nil {
		t.Fatal(err)
	}
	check := func(name string, iss Issued, now time.Time, wantRevoked bool) {
		t.Helper()
		cert, err := parseDER(iss.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		err = a.Revocations.Check(Device("dev-a"), cert, now)
		if wantRevoked != errors.Is(err, ErrRevoked) || !wantRevoked && err != nil {
			t.Fatalf("%s: %v (NotBefore %s, revoked %s)", name, err, cert.NotBefore, revokedAt)
		}
		if !wantRevoked && now.Before(cert.NotBefore) {
			t.Fatalf("%s: not valid yet at %s (NotBefore %s)", name, now, cert.NotBefore)
		}
	}
	check("first certificate", first, revokedAt, true)

	// An enrolment authorised before the revocation is refused.
	if _, err := e.Enroll("dev-a", t0, csr, revokedAt.Add(time.Second)); !errors.Is(err, ErrRevoked) {
		t.Fatalf("enrolment authorised before the revocation: %v, want ErrRevoked", err)
	}
	// Enrolled again 3 s after the revocation, well within the backdating window.
	second, err := e.Enroll("dev-a", revokedAt.Add(time.Second), csr, revokedAt.Add(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	check("re-enrolled certificate", second, revokedAt.Add(3*time.Second), false)
	// Renewed a minute later: still after the revocation.
	renewed, err := e.Renew(Device("dev-a"), csr, revokedAt.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	check("renewed certificate", renewed, revokedAt.Add(time.Minute), false)
	// A trustee issued by the operator after its revocation, likewise.
	if err := a.Revocations.RevokeIdentity(Trustee("t1"), revokedAt); err != nil {
		t.Fatal(err)
	}
	tc, err := a.IssueCredentials(Trustee("t1"), []string{"localhost"}, 0, revokedAt.Add(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Revocations.Check(Trustee("t1"), tc.Leaf(), revokedAt.Add(2*time.Second)); err != nil {
		t.Fatalf("trustee certificate issued after its revocation: %v", err)
	}

	if _, err := e.Renew(Trustee("t1"), csr, revokedAt); !errors.Is(err, ErrBadIdentity) {
		t.Fatalf("renewing a trustee through the enroller: %v", err)
	}
	if _, err := OpenAuthority(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("opened a directory without a CA")
	}
}

func TestEnrollmentRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	_, err := e.tryEnroll("dev-a")
	wantStatus(t, err, codes.PermissionDenied, reasonNotAuthorised)

	// A request with a broken signature is refused.
	e.authorise("dev-d", e.clock.Now())
	key, _ := GenerateKey()
	csr, _ := CreateCSR(key, "dev-d")
	csr[len(csr)-1] ^= 1
	_, err = e.dial(nil).Enroll(context.Background(), &vigilv1.EnrollRequest{DeviceId: "dev-d", CertificateRequest: csr})
	wantStatus(t, err, codes.InvalidArgument, ReasonBadCSR)
	_, err = e.dial(nil).Enroll(context.Background(), &vigilv1.EnrollRequest{DeviceId: "dev-d"})
	wantStatus(t, err, codes.InvalidArgument, ReasonBadCSR)
	e.enroll("dev-d")

	// An invalid device ID never reaches the CA.
	e.authorise("a/b", e.clock.Now())
	csr, _ = CreateCSR(key, "dev-d")
	_, err = e.dial(nil).Enroll(context.Background(), &vigilv1.EnrollRequest{DeviceId: "a/b", CertificateRequest: csr})
	wantStatus(t, err, codes.InvalidArgument, ReasonInvalidArgument)
}

func parseDER(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }
