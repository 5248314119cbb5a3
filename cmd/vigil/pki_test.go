package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
)

func pkiRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runPKI(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestPKICommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	out, _, err := pkiRun(t, "init", "-dir", dir, "-hosts", "coord.example,10.0.0.5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "sha256:") || !strings.Contains(out, "spiffe://vigil/coordinator/coordinator") {
		t.Fatalf("init output:\n%s", out)
	}
	if _, _, err := pkiRun(t, "init", "-dir", dir); err == nil || !strings.Contains(err.Error(), "already holds a CA") {
		t.Fatalf("second init: %v", err)
	}
	a, err := pki.OpenAuthority(dir)
	if err != nil {
		t.Fatal(err)
	}
	coord, err := a.CoordinatorCredentials()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := coord.Verify(time.Now()); err != nil || id != pki.Coordinator("coordinator") {
		t.Fatalf("coordinator credentials: %v, %v", id, err)
	}
	if got := hostsText(coord.Leaf()); got != "coord.example,10.0.0.5" {
		t.Fatalf("coordinator hosts %q", got)
	}

	// The CA issues transport certificates for enrolments authorised after any revocation.
	enroller, err := pki.NewEnroller(pki.EnrollerConfig{CA: a.CA, Revocations: a.Revocations})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := pki.GenerateKey()
	csr, _ := pki.CreateCSR(key, "laptop-7")
	if _, err := enroller.Enroll("laptop-7", time.Now(), csr, time.Now()); err != nil {
		t.Fatal(err)
	}

	// Revocation by the command reaches a running coordinator's list.
	if out, _, err := pkiRun(t, "revoke", "-dir", dir, "-device-id", "laptop-7"); err != nil || !strings.Contains(out, "spiffe://vigil/device/laptop-7") {
		t.Fatalf("revoke: %q, %v", out, err)
	}
	if err := a.Revocations.Refresh(); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Revocations.RevokedAt(pki.Device("laptop-7"), time.Now()); !ok {
		t.Fatal("the coordinator's list did not pick up the revocation")
	}
	if _, _, err := pkiRun(t, "revoke", "-dir", dir, "-serial", "0a:1b"); err != nil {
		t.Fatal(err)
	}

	trusteeDir := filepath.Join(t.TempDir(), "t1")
	if _, _, err := pkiRun(t, "issue-trustee", "-dir", dir, "-trustee-id", "t1", "-out", trusteeDir); err != nil {
		t.Fatal(err)
	}
	tc, err := pki.LoadCredentials(trusteeDir)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := tc.Verify(time.Now()); err != nil || id != pki.Trustee("t1") {
		t.Fatalf("trustee credentials: %v, %v", id, err)
	}
	if info, _ := os.Stat(filepath.Join(trusteeDir, pki.KeyFile)); info.Mode().Perm() != 0o600 {
		t.Fatalf("trustee key mode %v", info.Mode().Perm())
	}
	if _, _, err := pkiRun(t, "issue-trustee", "-dir", dir, "-trustee-id", "t1", "-out", trusteeDir); err == nil || !strings.Contains(err.Error(), "-out") {
		t.Fatalf("issue-trustee over an existing key: %v", err)
	}

	out, _, err = pkiRun(t, "show", "-dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 identities, 1 certificates", "spiffe://vigil/device/laptop-7", "serial a1b"} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
}

func TestPKIErrorsNameTheFlag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	if _, _, err := pkiRun(t, "init", "-dir", dir); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		// Tokens come from the enrolment authority, never the coordinator's PKI.
		{[]string{"token", "-dir", dir, "-device-id", "a"}, `unknown command "token"`},
		{[]string{"revoke", "-dir", dir}, "exactly one of"},
		{[]string{"revoke", "-dir", filepath.Join(dir, "typo"), "-device-id", "a"}, filepath.Join(dir, "typo")},
		{[]string{"revoke", "-dir", dir, "-device-id", "a", "-serial", "1"}, "exactly one of"},
		{[]string{"revoke", "-dir", dir, "-serial", "zz"}, "flag -serial"},
		{[]string{"revoke", "-dir", dir, "-trustee-id", "bad id"}, "flag -trustee-id"},
		{[]string{"init", "-dir", filepath.Join(dir, "x"), "-hosts", "*.example"}, "flag -hosts"},
		{[]string{"init", "-dir", filepath.Join(dir, "y"), "-coordinator-id", ""}, "flag -coordinator-id"},
		{[]string{"issue-trustee", "-dir", dir, "-trustee-id", "t1"}, "flag -out is required"},
		{[]string{"show", "-dir", dir, "extra"}, `unexpected argument "extra"`},
	} {
		_, _, err := pkiRun(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("vigil pki %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
	// A damaged CA key file is named in the error.
	os.Chmod(filepath.Join(dir, pki.CAKeyFile), 0o644)
	if _, _, err := pkiRun(t, "show", "-dir", dir); err == nil || !strings.Contains(err.Error(), pki.CAKeyFile) {
		t.Fatalf("world-readable CA key: %v", err)
	}
}

// TestRevokeAndTokenRefuseOtherDirectories gives `vigil pki revoke` and `vigil enrol token` the
// directories of an organisation they must refuse, where they once wrote a revocation that
// no server reads or a token that no authority accepts, and those they must take.
func TestRevokeAndTokenRefuseOtherDirectories(t *testing.T) {
	orgDir := org(t)
	empty := t.TempDir()
	for _, tc := range []struct {
		dir, want string
	}{
		{orgDir, filepath.Join(orgDir, orgPKI)},
		{empty, "not a PKI directory"},
		{filepath.Join(orgDir, orgEnrol), "enrolment authority's directory"},
		{filepath.Join(orgDir, orgEnrol, enrolment.TLSDir), "not a trustee's"},
		{filepath.Join(orgDir, orgPKI, pki.CoordinatorDir), "not a trustee's"},
	} {
		_, _, err := pkiRun(t, "revoke", "-dir", tc.dir, "-device-id", "d1")
		if err == nil || !strings.Contains(err.Error(), "flag -dir "+tc.dir) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing revoked") {
			t.Errorf("vigil pki revoke -dir %s: %v, want an error naming the flag and %q", tc.dir, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(tc.dir, pki.RevocationsFile)); !os.IsNotExist(err) {
			t.Errorf("vigil pki revoke -dir %s wrote %s", tc.dir, pki.RevocationsFile)
		}
	}
	for _, dir := range []string{filepath.Join(orgDir, orgPKI), filepath.Join(orgDir, orgTrustees, "audit", orgTrusteeTLS)} {
		if _, _, err := pkiRun(t, "revoke", "-dir", dir, "-device-id", "d1"); err != nil {
			t.Errorf("vigil pki revoke -dir %s: %v", dir, err)
		}
	}

	for _, dir := range []string{filepath.Join(orgDir, orgPKI), empty} {
		_, _, err := enrolRun("token", "-dir", dir, "-device-id", "d1")
		if err == nil || !strings.Contains(err.Error(), "flag -dir "+dir) || !strings.Contains(err.Error(), enrolment.PublicKeyFile) {
			t.Errorf("vigil enrol token -dir %s: %v, want an error naming the flag and %s", dir, err, enrolment.PublicKeyFile)
		}
		if _, err := os.Stat(filepath.Join(dir, enrolment.TokensFile)); !os.IsNotExist(err) {
			t.Errorf("vigil enrol token -dir %s wrote %s", dir, enrolment.TokensFile)
		}
	}
	if _, _, err := enrolRun("token", "-dir", filepath.Join(orgDir, orgEnrol), "-device-id", "d1"); err != nil {
		t.Errorf("vigil enrol token in the authority's directory: %v", err)
	}
}
