package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// CertSpec describes a certificate for the CA to issue.
type CertSpec struct {
	// Identity is the holder; it becomes the certificate's only URI name.
	Identity Identity
	// PublicKey is the holder's key (ECDSA P-256/P-384 or Ed25519).
	PublicKey crypto.PublicKey
	// Validity is the lifetime; zero means DefaultDeviceValidity for devices and
	// DefaultServerValidity otherwise.
	Validity time.Duration
	// Hosts are the DNS names and IP addresses a coordinator or trustee serves on. Devices have
	// none.
	Hosts []string
	// StartAfter, if set, is the time the identity was last revoked. NotBefore is normally
	// backdated by Backdate, and revocation refuses certificates whose NotBefore is not after the
	// revocation; so a certificate issued soon after a revocation starts just after it instead,
	// or it would be born revoked.
	StartAfter time.Time
}

func (s *CertSpec) validate() error {
	if err := s.Identity.Validate(); err != nil {
		return err
	}
	if s.PublicKey == nil {
		return fmt.Errorf("pki: certificate for %s: no public key", s.Identity)
	}
	if err := checkPublicKey(s.PublicKey); err != nil {
		return err
	}
	if s.Validity == 0 {
		s.Validity = DefaultServerValidity
		if s.Identity.Role == RoleDevice {
			s.Validity = DefaultDeviceValidity
		}
	}
	if err := checkValidity(s.Validity); err != nil {
		return err
	}
	if s.Identity.Role == RoleDevice && len(s.Hosts) > 0 {
		return fmt.Errorf("pki: device certificates carry no host names (got %q)", s.Hosts)
	}
	return nil
}

// Issue signs a certificate for spec, valid from now. Devices get the client-auth key usage only;
// coordinators and trustees get server and client auth. The certificate may not outlive the CA.
func (ca *CA) Issue(spec CertSpec, now time.Time) (*x509.Certificate, error) {
	if err := spec.validate(); err != nil {
		return nil, err
	}
	dns, ips, err := ParseHosts(spec.Hosts)
	if err != nil {
		return nil, err
	}
	notBefore := now.Add(-Backdate).UTC().Truncate(time.Second)
	if !spec.StartAfter.IsZero() && !notBefore.After(spec.StartAfter) {
		notBefore = spec.StartAfter.UTC().Truncate(time.Second).Add(time.Second)
	}
	notAfter := now.Add(spec.Validity).UTC().Truncate(time.Second)
	if notAfter.After(ca.cert.NotAfter) {
		return nil, fmt.Errorf("pki: a certificate valid until %s would outlive the CA (valid until %s)",
			notAfter.Format(time.RFC3339), ca.cert.NotAfter.Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	eku := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if spec.Identity.Role != RoleDevice {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// The subject is informational; peers identify by the URI name alone.
		Subject:               pkix.Name{CommonName: spec.Identity.ID, OrganizationalUnit: []string{string(spec.Identity.Role)}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{spec.Identity.URI()},
		DNSNames:              dns,
		IPAddresses:           ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, spec.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: issue certificate for %s: %w", spec.Identity, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return cert, nil
}

// IssueFromCSR verifies a PKCS#10 request and issues a certificate for id on the request's key.
// Nothing but the key is taken from the request: its subject and requested extensions are
// ignored, because the identity comes from the enrolment, not from what the requester wrote.
func (ca *CA) IssueFromCSR(csrDER []byte, id Identity, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	return ca.Issue(CertSpec{Identity: id, PublicKey: csr.PublicKey, Validity: validity}, now)
}

// ParseCSR parses a PKCS#10 certificate request (DER) of at most MaxCSRBytes, checks that its key
// is of a supported type and that its signature verifies, which proves the requester holds the
// private key.
func ParseCSR(der []byte) (*x509.CertificateRequest, error) {
	if len(der) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadCSR)
	}
	if len(der) > MaxCSRBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadCSR, len(der), MaxCSRBytes)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if err := checkPublicKey(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %w", ErrBadCSR, err)
	}
	return csr, nil
}

// CreateCSR returns a PKCS#10 request (DER) for key, naming deviceID as its subject. The CA
// ignores the subject; it is there for people reading the request.
func CreateCSR(key crypto.Signer, deviceID string) ([]byte, error) {
	if err := Device(deviceID).Validate(); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: deviceID},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("pki: create certificate request: %w", err)
	}
	return der, nil
}

// ParseHosts splits host names into DNS names and IP addresses, refusing anything that is
// neither (wildcards included) and more than MaxDNSNames of them.
func ParseHosts(hosts []string) (dns []string, ips []net.IP, err error) {
	if len(hosts) > MaxDNSNames {
		return nil, nil, fmt.Errorf("pki: %d host names, the limit is %d", len(hosts), MaxDNSNames)
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if !validDNSName(h) {
			return nil, nil, fmt.Errorf("pki: host %q is neither an IP address nor a DNS name", h)
		}
		dns = append(dns, strings.ToLower(h))
	}
	return dns, ips, nil
}

func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
