package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	"github.com/vigilauth/vigil/release"
)

func enrolRun(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := runEnrol(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestEnrolCommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "enrol")
	out, _, err := enrolRun("init", "-dir", dir, "-hosts", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, enrolment.PublicKeyFile) || !strings.Contains(out, "sha256:") {
		t.Fatalf("init output:\n%s", out)
	}
	if _, _, err := enrolRun("init", "-dir", dir); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Fatalf("second init: %v", err)
	}
	out, errOut, err := enrolRun("token", "-dir", dir, "-device-id", "laptop-7", "-ttl", "1h")
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(out)
	tokens, err := pki.OpenTokens(filepath.Join(dir, enrolment.TokensFile))
	if err != nil {
		t.Fatal(err)
	}
	shown := time.Now()
	issued, err := tokens.Check(token, "laptop-7", shown)
	if err != nil || !strings.Contains(errOut, "ca.pem") {
		t.Fatalf("printed token %q: %v; stderr %q", token, err, errOut)
	}
	// Shown only from its date, a revocation made before the token is shown never dates after
	// it (which would let the token outlive the revocation).
	if shown.Before(issued) {
		t.Fatalf("token dated %s shown at %s, before its date", issued.Format(time.RFC3339Nano), shown.Format(time.RFC3339Nano))
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"token", "-device-id", "x"}, "flag -dir is required"},
		{[]string{"token", "-dir", dir}, "flag -device-id is required"},
		{[]string{"token", "-dir", dir, "-device-id", "a/b"}, "flag -device-id"},
		{[]string{"token", "-dir", dir, "-device-id", "a", "-ttl", "0s"}, "flag -ttl"},
		{[]string{"token", "-dir", filepath.Join(dir, "nope"), "-device-id", "a"}, "-dir"},
		{[]string{"serve", "-dir", filepath.Join(dir, "nope")}, "vigil enrol init"},
		{[]string{"serve", "-dir", dir, "-listen", "nonsense"}, "-listen"},
		{[]string{"init", "-dir", filepath.Join(dir, "x"), "-hosts", "*.example"}, "flag -hosts"},
	} {
		_, _, err := enrolRun(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("vigil enrol %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestSetupGivesEnrolmentRoleToAuthority checks that `vigil setup` puts the enrolment
// authority's key, kept only in ORG/enrol, in the root's enrolment role, and no key of the
// coordinator's.
func TestSetupGivesEnrolmentRoleToAuthority(t *testing.T) {
	orgDir := org(t)
	root, err := orgTrustRoot(orgDir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := sig.ReadPublicKeyFile(filepath.Join(orgDir, orgEnrol, enrolment.PublicKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if ids := root.Roles.Enrolment.KeyIDs; len(ids) != 1 || ids[0] != pub.ID() || root.Roles.Enrolment.Threshold != 1 {
		t.Fatalf("enrolment role %+v, want the authority's key %s alone", root.Roles.Enrolment, pub.ID().Short())
	}
	key, err := sig.ReadPrivateKeyFile(filepath.Join(orgDir, orgEnrol, enrolment.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec, err := release.Sign(release.NewDeviceRecord("d1", "eu", key.Public(), now, now.Add(time.Hour)), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.VerifyDeviceRecord(rec, now); err != nil {
		t.Fatalf("a record signed by the authority: %v", err)
	}
	for _, name := range []string{"root", "release", "timestamp"} {
		k, err := sig.ReadPrivateKeyFile(filepath.Join(orgDir, orgKeys, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		forged, _ := release.Sign(release.NewDeviceRecord("d1", "eu", key.Public(), now, now.Add(time.Hour)), k)
		if _, err := root.VerifyDeviceRecord(forged, now); err == nil {
			t.Fatalf("a record signed with the %s key verifies", name)
		}
	}
}
