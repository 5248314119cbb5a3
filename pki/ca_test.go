package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCASaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	now := time.Now()
	ca, err := NewCA("Vigil CA", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Save(dir); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
	if err := ca.Save(dir); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second Save: %v", err)
	}
	got, err := LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Certificate().Equal(ca.Certificate()) {
		t.Fatal("loaded CA certificate differs")
	}
	// The loaded CA signs certificates the original's pool accepts.
	key, _ := GenerateKey()
	cert, err := got.Issue(CertSpec{Identity: Device("d"), PublicKey: key.Public()}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now}); err != nil {
		t.Fatal(err)
	}

	// A key others can read is refused, as ssh refuses it.
	os.Chmod(filepath.Join(dir, CAKeyFile), 0o644)
	if _, err := LoadCA(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Chmod(filepath.Join(dir, CAKeyFile), 0o600)

	// A key that is not the certificate's is refused.
	other, _ := NewCA("other", 0, now)
	otherKey, _ := MarshalPrivateKeyPEM(other.key)
	os.WriteFile(filepath.Join(dir, CAKeyFile), otherKey, 0o600)
	if _, err := LoadCA(dir); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("mismatched key: %v", err)
	}
}

func TestStrictPEM(t *testing.T) {
	ca, _ := NewCA("x", 0, time.Now())
	certPEM := MarshalCertificatesPEM(ca.Certificate())
	keyPEM, _ := MarshalPrivateKeyPEM(ca.key)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384PEM, _ := MarshalPrivateKeyPEM(p384)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	p224DER, _ := x509.MarshalPKCS8PrivateKey(p224)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edPEM, _ := MarshalPrivateKeyPEM(edKey)
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: ca.Certificate().Raw})
	sec1, _ := x509.MarshalECPrivateKey(ca.key.(*ecdsa.PrivateKey))

	certCases := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"one", certPEM, true},
		{"two", append(append([]byte{}, certPEM...), certPEM...), true},
		{"CRLF and blank lines", append([]byte("\r\n\n"), bytes.ReplaceAll(certPEM, []byte("\n"), []byte("\r\n"))...), true},
		{"leading text", append([]byte("hello\n"), certPEM...), false},
		{"trailing text", append(append([]byte{}, certPEM...), "bye\n"...), false},
		{"headers", withHeader, false},
		{"wrong type", pem.EncodeToMemory(&pem.Block{Type: "X509 CERTIFICATE", Bytes: ca.Certificate().Raw}), false},
		{"empty", nil, false},
		{"too many", bytes.Repeat(certPEM, MaxChainCertificates+1), false},
		{"garbage DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), false},
		{"truncated", certPEM[:len(certPEM)-10], false},
	}
	for _, tc := range certCases {
		_, err := ParseCertificatesPEM(tc.data)
		if tc.ok != (err == nil) {
			t.Errorf("certificates %s: err = %v", tc.name, err)
		}
	}
	keyCases := []struct {
		name string
		data []byte
		ok   bool
	}{
		{"P-256", keyPEM, true},
		{"P-384", p384PEM, true},
		{"Ed25519", edPEM, true},
		{"RSA", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: rsaDER}), false},
		{"P-224", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p224DER}), false},
		{"SEC 1", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), false},
		{"two keys", append(append([]byte{}, keyPEM...), keyPEM...), false},
		{"certificate", certPEM, false},
	}
	for _, tc := range keyCases {
		_, err := ParsePrivateKeyPEM(tc.data)
		if tc.ok != (err == nil) {
			t.Errorf("key %s: err = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, ErrBadPEM) {
			t.Errorf("key %s: %v does not wrap ErrBadPEM", tc.name, err)
		}
	}
}

func TestParseCSR(t *testing.T) {
	key, _ := GenerateKey()
	good, err := CreateCSR(key, "dev-a")
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaCSR, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, rsaKey)
	badSig := bytes.Clone(good)
	badSig[len(badSig)-3] ^= 0x40
	for _, tc := range []struct {
		name string
		der  []byte
		ok   bool
	}{
		{"good", good, true},
		{"bad signature", badSig, false},
		{"RSA key", rsaCSR, false},
		{"trailing data", append(bytes.Clone(good), 0), false},
		{"empty", nil, false},
		{"too large", make([]byte, MaxCSRBytes+1), false},
		{"truncated", good[:len(good)/2], false},
	} {
		_, err := ParseCSR(tc.der)
		if tc.ok != (err == nil) {
			t.Errorf("%s: err = %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, ErrBadCSR) {
			t.Errorf("%s: %v does not wrap ErrBadCSR", tc.name, err)
		}
	}
}

func TestCredentialsRoundTrip(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("x", 0, now)
	key, _ := GenerateKey()
	csr, _ := CreateCSR(key, "dev-a")
	cert, err := ca.IssueFromCSR(csr, Device("dev-a"), 0, now)
	if err != nil {
		t.Fatal(err)
	}
	roots := []*x509.Certificate{ca.Certificate()}
	creds, err := AcceptEnrolment(key, cert.Raw, [][]byte{ca.Certificate().Raw}, roots, Device("dev-a"), now)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dev")
	if err := SaveCredentials(dir, creds); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCredentials(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := got.Verify(now); err != nil || id != Device("dev-a") {
		t.Fatalf("loaded credentials: %v, %v", id, err)
	}
	if _, err := got.Verify(now.Add(DefaultDeviceValidity + time.Hour)); !errors.Is(err, ErrBadCertificate) {
		t.Fatalf("expired credentials verify: %v", err)
	}

	// The enrolment answer is checked: another device's name, another key, a CA the device was
	// not given.
	other, _ := GenerateKey()
	rogue, _ := NewCA("rogue", 0, now)
	rogueCert, _ := rogue.IssueFromCSR(csr, Device("dev-a"), 0, now)
	for name, f := range map[string]func() error{
		"wrong identity": func() error {
			_, err := AcceptEnrolment(key, cert.Raw, [][]byte{ca.Certificate().Raw}, roots, Device("dev-b"), now)
			return err
		},
		"wrong key": func() error {
			_, err := AcceptEnrolment(other, cert.Raw, [][]byte{ca.Certificate().Raw}, roots, Device("dev-a"), now)
			return err
		},
		"unknown CA": func() error {
			_, err := AcceptEnrolment(key, rogueCert.Raw, [][]byte{rogue.Certificate().Raw}, roots, Device("dev-a"), now)
			return err
		},
		"certificate not from the returned CA": func() error {
			_, err := AcceptEnrolment(key, rogueCert.Raw, [][]byte{ca.Certificate().Raw}, roots, Device("dev-a"), now)
			return err
		},
	} {
		if err := f(); !errors.Is(err, ErrBadCertificate) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestAcceptEnrolmentWithSkewedClock: a device accepts the certificate the CA has just made
// however slow its clock runs (it judges it at the certificate's NotBefore), but never one that
// has expired by its clock.
func TestAcceptEnrolmentWithSkewedClock(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("x", 0, now.Add(-time.Hour))
	key, _ := GenerateKey()
	csr, _ := CreateCSR(key, "dev-a")
	cert, err := ca.IssueFromCSR(csr, Device("dev-a"), 0, now)
	if err != nil {
		t.Fatal(err)
	}
	roots := []*x509.Certificate{ca.Certificate()}
	for _, tc := range []struct {
		name string
		skew time.Duration
		ok   bool
	}{
		{"on time", 0, true},
		{"an hour slow", -time.Hour, true},
		{"beyond MaxClockSkew", -MaxClockSkew - time.Hour, true},
		{"three days slow", -72 * time.Hour, true},
		{"a day fast", 24 * time.Hour, true},
		{"fast past the certificate's expiry", DefaultDeviceValidity + time.Hour, false},
	} {
		_, err := AcceptEnrolment(key, cert.Raw, [][]byte{ca.Certificate().Raw}, roots, Device("dev-a"), now.Add(tc.skew))
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrBadCertificate) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if got := now.Sub(cert.NotBefore); got < MaxClockSkew || got > MaxClockSkew+time.Second {
		t.Errorf("a fresh certificate starts %v before its issue, want MaxClockSkew (%v), so that peers that slow accept it", got, MaxClockSkew)
	}
}

// TestCrashWhileSavingCredentials: a crash at any point of a renewal's save leaves a directory
// that loads as the old credentials or the new ones, never a key beside another's certificate.
func TestCrashWhileSavingCredentials(t *testing.T) {
	now := time.Now()
	ca, _ := NewCA("x", 0, now)
	issue := func() Credentials {
		key, _ := GenerateKey()
		csr, _ := CreateCSR(key, "dev-a")
		cert, err := ca.IssueFromCSR(csr, Device("dev-a"), 0, now)
		if err != nil {
			t.Fatal(err)
		}
		return Credentials{Key: key, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{ca.Certificate()}}
	}
	old, renewed := issue(), issue()
	saved := filepath.Join(t.TempDir(), "renewed")
	if err := SaveCredentials(saved, renewed); err != nil {
		t.Fatal(err)
	}
	copyFile := func(from, to string) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(from)
		if err := os.WriteFile(to, b, fi.Mode()); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		crash   func(dir string) // what the crash left of the renewal
		renewed bool
	}{
		{"while writing the pending files", func(dir string) {
			os.Mkdir(filepath.Join(dir, pendingDir+".tmp"), 0o700)
			copyFile(filepath.Join(saved, KeyFile), filepath.Join(dir, pendingDir+".tmp", KeyFile))
		}, false},
		{"once the key was moved into place", func(dir string) {
			os.Mkdir(filepath.Join(dir, pendingDir), 0o700)
			copyFile(filepath.Join(saved, KeyFile), filepath.Join(dir, KeyFile))
			for _, name := range []string{CertFile, RootsFile} {
				copyFile(filepath.Join(saved, name), filepath.Join(dir, pendingDir, name))
			}
		}, true},
		{"once every file was moved", func(dir string) {
			os.Mkdir(filepath.Join(dir, pendingDir), 0o700)
			for _, name := range []string{KeyFile, CertFile, RootsFile} {
				copyFile(filepath.Join(saved, name), filepath.Join(dir, name))
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dev")
			if err := SaveCredentials(dir, old); err != nil {
				t.Fatal(err)
			}
			tc.crash(dir)
			got, err := LoadCredentials(dir)
			if err != nil {
				t.Fatal(err)
			}
			want := old
			if tc.renewed {
				want = renewed
			}
			if !got.Chain[0].Equal(want.Chain[0]) {
				t.Fatalf("loaded the %s credentials", map[bool]string{true: "old", false: "renewed"}[tc.renewed])
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 3 {
				t.Fatalf("%d entries left in the directory, want the 3 files", len(entries))
			}
		})
	}
}
