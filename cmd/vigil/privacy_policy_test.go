package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/sim"
)

// TestPrivacyPolicyFlow: `vigil setup` signs a policy under the root's privacy role; the
// privacy office tightens it with `vigil privacy policy`; a coordinator whose settings are
// outside the policy it would hand to devices refuses to start, naming the setting.
func TestPrivacyPolicyFlow(t *testing.T) {
	org := filepath.Join(t.TempDir(), "org")
	if err := setupOrg(org, []string{"a", "b", "c"}, 2, []string{"127.0.0.1"}, defaultPolicyFlags(), time.Now()); err != nil {
		t.Fatal(err)
	}
	root, err := release.ParseTrustedRoot(readFile(t, filepath.Join(org, orgRoot)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := root.VerifyPrivacyPolicy(readFile(t, filepath.Join(org, orgPolicy)), time.Now())
	if err != nil {
		t.Fatalf("setup's policy: %v", err)
	}
	if p.MinNoiseMultiplier != 1 || p.MaxClipNorm != sim.MaxClip {
		t.Fatalf("setup's policy %+v", p)
	}
	if _, err := root.VerifyPrivacyPolicy(readFile(t, filepath.Join(org, orgKeyEpochDoc)), time.Now()); err == nil {
		t.Fatal("a key-epoch document verified as a privacy policy")
	}

	stricter := filepath.Join(t.TempDir(), "policy-v2.json")
	var out bytes.Buffer
	err = runPrivacy(context.Background(), []string{"policy", "--key", filepath.Join(org, orgPrivacy, "privacy.key"),
		"--version", "2", "--min-noise", "2", "--out", stricter}, &out, &out)
	if err != nil || !strings.Contains(out.String(), "z >= 2") {
		t.Fatalf("privacy policy: %v\n%s", err, out.String())
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--privacy-policy", stricter}, "noise multiplier 1 is below the policy's floor 2"},
		{[]string{"--clip", "150"}, "clip norm 150 is outside"},
		{[]string{"--privacy-policy", filepath.Join(org, "nope.json")}, "--privacy-policy"},
	} {
		args := append([]string{"--org", org, "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", "",
			"--insecure-plaintext"}, tc.args...)
		out.Reset()
		err := runCoordinator(context.Background(), args, &out, &out)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("coordinator %v: %v, want an error containing %q\n%s", tc.args, err, tc.want, out.String())
		}
	}
	for _, args := range [][]string{
		{"policy", "--out", "x"},
		{"policy", "--key", "k", "--out", "x"},
	} {
		if err := runPrivacy(context.Background(), args, &out, &out); err == nil {
			t.Errorf("privacy %v succeeded", args)
		}
	}
	if _, err := os.Stat(filepath.Join(org, orgKeys, "privacy.key")); err == nil {
		t.Error("the privacy office's key is among the coordinator's keys")
	}
}
