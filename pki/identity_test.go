package pki

import (
	"crypto/rand"
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Identity
		ok   bool
	}{
		{"spiffe://vigil/device/dev-a", Device("dev-a"), true},
		{"spiffe://vigil/coordinator/coord.eu_1", Coordinator("coord.eu_1"), true},
		{"spiffe://vigil/trustee/" + strings.Repeat("t", 64), Trustee(strings.Repeat("t", 64)), true},
		{"spiffe://vigil/trustee/" + strings.Repeat("t", 65), Identity{}, false},
		{"spiffe://vigil/admin/x", Identity{}, false},
		{"spiffe://vigil/device/", Identity{}, false},
		{"spiffe://vigil/device", Identity{}, false},
		{"spiffe://vigil/device/a/b", Identity{}, false},
		{"spiffe://vigil/device/a%2Fb", Identity{}, false},
		{"spiffe://other/device/a", Identity{}, false},
		{"spiffe://vigil:443/device/a", Identity{}, false},
		{"SPIFFE://vigil/device/a", Identity{}, false},
		{"spiffe://vigil/device/a?x", Identity{}, false},
		{"spiffe://vigil/device/a#x", Identity{}, false},
		{"https://vigil/device/a", Identity{}, false},
		{"", Identity{}, false},
	} {
		got, err := ParseIdentity(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("ParseIdentity(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadIdentity) {
			t.Errorf("ParseIdentity(%q) error %v does not wrap ErrBadIdentity", tc.in, err)
		}
		if tc.ok && got.String() != tc.in {
			t.Errorf("%q does not round-trip: %q", tc.in, got.String())
		}
	}
}

func TestIdentityOfNeedsExactlyOneURI(t *testing.T) {
	u := func(s string) *url.URL {
		v, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		uris []*url.URL
		ok   bool
	}{
		{"one", []*url.URL{u("spiffe://vigil/device/a")}, true},
		{"none", nil, false},
		{"two", []*url.URL{u("spiffe://vigil/device/a"), u("spiffe://vigil/device/b")}, false},
		{"user", []*url.URL{u("spiffe://x@vigil/device/a")}, false},
		{"escaped", []*url.URL{u("spiffe://vigil/device/%61")}, false},
	} {
		_, err := IdentityOf(&x509.Certificate{URIs: tc.uris})
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}

func TestIssuedCertificateShape(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := GenerateKey()
	// The request names another device and carries SANs of its own; the CA ignores them.
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		DNSNames: []string{"evil.example"}, URIs: []*url.URL{Coordinator("coord").URI()},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.IssueFromCSR(csr, Device("dev-a"), 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := IdentityOf(cert); err != nil || id != Device("dev-a") {
		t.Fatalf("identity %v, %v", id, err)
	}
	if len(cert.DNSNames) != 0 || len(cert.IPAddresses) != 0 || cert.IsCA {
		t.Fatalf("device certificate has names %v %v or is a CA", cert.DNSNames, cert.IPAddresses)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Fatalf("device EKU %v, want client auth only", cert.ExtKeyUsage)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got < DefaultDeviceValidity || got > DefaultDeviceValidity+Backdate+time.Second {
		t.Fatalf("device certificate lives %v", got)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, CurrentTime: now}); err == nil {
		t.Fatal("a device certificate verifies for server auth")
	}

	srv, err := ca.Issue(CertSpec{Identity: Trustee("t1"), PublicKey: key.Public(), Hosts: []string{"localhost", "127.0.0.1", "::1", "Trustee-1.Example"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv.ExtKeyUsage) != 2 || len(srv.IPAddresses) != 2 || len(srv.DNSNames) != 2 || srv.DNSNames[1] != "trustee-1.example" {
		t.Fatalf("trustee certificate EKU %v IPs %v DNS %v", srv.ExtKeyUsage, srv.IPAddresses, srv.DNSNames)
	}
	for _, bad := range []CertSpec{
		{Identity: Device("d"), PublicKey: key.Public(), Hosts: []string{"localhost"}},
		{Identity: Trustee("t"), PublicKey: key.Public(), Hosts: []string{"*.example"}},
		{Identity: Trustee("t"), PublicKey: key.Public(), Hosts: []string{"a b"}},
		{Identity: Trustee("t"), PublicKey: key.Public(), Validity: time.Minute},
		{Identity: Trustee("t"), PublicKey: key.Public(), Validity: 11 * 365 * 24 * time.Hour}, // outlives the CA
		{Identity: Identity{Role: "admin", ID: "x"}, PublicKey: key.Public()},
		{Identity: Device("d")},
	} {
		if _, err := ca.Issue(bad, now); err == nil {
			t.Errorf("Issue(%+v) succeeded", bad)
		}
	}
}
