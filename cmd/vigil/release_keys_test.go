package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
)

// The test binary doubles as a hardware-key program for -key exec:PROGRAM: with
// VIGIL_TEST_EXEC_SIGNER_KEY set it answers `public-key` and `sign` from that key file, as an
// HSM's helper would, and exits.
func init() {
	keyFile := os.Getenv("VIGIL_TEST_EXEC_SIGNER_KEY")
	if keyFile == "" || len(os.Args) != 2 {
		return
	}
	k, err := sig.ReadPrivateKeyFile(keyFile)
	if err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(1)
	}
	switch os.Args[1] {
	case "public-key":
		os.Stdout.Write(sig.MarshalPublicKey(k.Public()))
	case "sign":
		msg, _ := io.ReadAll(os.Stdin)
		s, err := k.Sign(msg, "")
		if err != nil {
			os.Exit(1)
		}
		if os.Getenv("VIGIL_TEST_EXEC_SIGNER_BREAK") != "" {
			s[0] ^= 1
		}
		os.Stdout.Write(s)
	default:
		os.Exit(2)
	}
	os.Exit(0)
}

// TestExecSigner signs a release with the release key behind `-key exec:PROGRAM`, as a
// hardware key would be plugged in, and refuses a program whose signatures do not verify.
func TestExecSigner(t *testing.T) {
	dir, stage := operatorSetup(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_TEST_EXEC_SIGNER_KEY", filepath.Join(dir, "release.key"))
	s, err := loadSigner("key", "exec:"+self)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := sig.ReadPrivateKeyFile(filepath.Join(dir, "release.key"))
	if s.ID() != file.ID() {
		t.Fatalf("exec signer has key %s, want %s", s.ID().Short(), file.ID().Short())
	}
	mustRelease(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "2", "-artifacts", filepath.Join(dir, "artifacts"),
		"-release-key", "exec:"+self, "-timestamp-key", filepath.Join(dir, "ts.key"))
	env, err := release.ParseEnvelope(readFile(t, filepath.Join(stage, "releases/vigil-ae/2/manifest.json")))
	if err != nil || len(env.Signatures) != 1 || env.Signatures[0].KeyID != file.ID() {
		t.Fatalf("manifest signed by the exec signer: %v", err)
	}
	t.Setenv("VIGIL_TEST_EXEC_SIGNER_BREAK", "1")
	out, err := release_(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "3", "-artifacts", filepath.Join(dir, "artifacts"),
		"-release-key", "exec:"+self, "-timestamp-key", filepath.Join(dir, "ts.key"))
	if err == nil || !strings.Contains(err.Error(), "does not verify under its public key") {
		t.Fatalf("broken exec signer: %v\n%s", err, out)
	}
}
