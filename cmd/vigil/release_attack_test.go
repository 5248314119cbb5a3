package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/release"
)

// TestAttackVersionJump is issue 15, item 1, on the signer's side: an operator's typo
// (`sign release -version 3000000`) would raise every device's floor to it. The signer refuses
// a jump without -force, and a version at or below the staged one ("staged" while nothing
// changed), before writing anything.
func TestAttackVersionJump(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	sign := func(version string, extra ...string) (string, error) {
		args := append([]string{"sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", version, "-artifacts", k("artifacts"),
			"-release-key", k("release.key"), "-timestamp-key", k("ts.key")}, extra...)
		return release_(t, args...)
	}
	before := stageListing(t, stage)
	out, err := sign("3000000")
	if !errors.Is(err, release.ErrVersionJump) || exitCode(err) != exitRefused || !strings.Contains(err.Error(), "-force") {
		t.Fatalf("version jump: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	out, err = sign("1")
	if !errors.Is(err, release.ErrRollback) || exitCode(err) != exitRefused {
		t.Fatalf("version already staged: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	if after := stageListing(t, stage); after != before {
		t.Fatalf("a refused signing changed the stage:\n%s\nwas\n%s", after, before)
	}
	if out, err := sign("3000000", "-force"); err != nil {
		t.Fatalf("version jump with -force: %v\n%s", err, out)
	}
}

// TestAttackWrongRole is issue 15, item 6: a release signed with the wrong key (here the
// timestamp key as the release key) was staged and published, devices refused it, and the
// version number was burned for the retention. Now sign refuses it against the staged root, and
// publish refuses a stage holding one (copied in by hand) without writing anything.
func TestAttackWrongRole(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	before := stageListing(t, stage)
	out, err := release_(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "2", "-artifacts", k("artifacts"),
		"-release-key", k("ts.key"), "-timestamp-key", k("ts.key"))
	if !errors.Is(err, release.ErrUnknownKey) || !strings.Contains(err.Error(), "-release-key") || exitCode(err) != exitRefused {
		t.Fatalf("release signed with the timestamp key: %v\n%s", err, out)
	}
	if after := stageListing(t, stage); after != before {
		t.Fatal("a refused signing changed the stage")
	}

	// The same mistake made in another stage and copied in by hand.
	other := filepath.Join(dir, "other-stage")
	copyFile(t, filepath.Join(stage, "root/1.root.json"), filepath.Join(other, "root/1.root.json"))
	mustRelease(t, "sign", "release", "-stage", other, "-model", "vigil-ae", "-version", "2", "-artifacts", k("artifacts"),
		"-release-key", k("release.key"), "-timestamp-key", k("ts.key"))
	forged := filepath.Join(other, "releases/vigil-ae/2/manifest.json")
	data, err := os.ReadFile(forged)
	if err != nil {
		t.Fatal(err)
	}
	// Re-sign the staged manifest with the timestamp key, as the operator's mistake would.
	wrong := resign(t, data, k("ts.key"))
	if err := os.WriteFile(forged, wrong, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "eu")
	out, err = release_(t, "publish", "-from", other, "-to", dest)
	if err == nil || exitCode(err) != exitRefused || !strings.Contains(err.Error(), "releases/vigil-ae/2/manifest.json") {
		t.Fatalf("publish of a wrong-role manifest: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("publish wrote to the region although the stage does not verify")
	}
}

// TestAttackThresholdSigning is issue 15, item 5: root signing needed every root key in one
// run on one machine, and keys were unencrypted. Now two offline signers of a 2-of-3 root sign
// on their own machines (copies of the file), the copies are merged, and publish accepts the
// root only once the threshold is met. Refused: a signature by a key that is not a root key, a
// copy whose payload was changed, and an encrypted key with the wrong passphrase.
func TestAttackThresholdSigning(t *testing.T) {
	dir := t.TempDir()
	k := func(n string) string { return filepath.Join(dir, n) }
	t.Setenv("VIGIL_KEY_PASSPHRASE", "alice's passphrase")
	mustRelease(t, "keygen", "-out", k("machineA/root-a"))
	t.Setenv("VIGIL_KEY_PASSPHRASE", "bob's passphrase")
	mustRelease(t, "keygen", "-out", k("machineB/root-b"))
	mustRelease(t, "keygen", "-out", k("safe/root-c"))
	for _, n := range []string{"release", "ts", "trustee", "enrol", "privacy", "intruder"} {
		mustRelease(t, "keygen", "-unencrypted", "-out", k(n))
	}
	stage := k("stage")
	signA := func(extra ...string) (string, error) {
		args := []string{"sign", "root", "-stage", stage, "-version", "1", "-expires", "8760h",
			"-root", k("machineA/root-a.pub") + "," + k("machineB/root-b.pub") + "," + k("safe/root-c.pub"), "-root-threshold", "2",
			"-release", k("release.pub"), "-timestamp", k("ts.pub"), "-trustees", k("trustee.pub"), "-trustees-threshold", "1",
			"-enrolment", k("enrol.pub"), "-privacy", k("privacy.pub"), "-key", k("machineA/root-a.key")}
		return release_(t, append(args, extra...)...)
	}
	// Signer A on machine A, with A's passphrase.
	t.Setenv("VIGIL_KEY_PASSPHRASE", "bob's passphrase")
	if out, err := signA("-partial"); err == nil || !strings.Contains(err.Error(), "passphrase") {
		t.Fatalf("A's key with B's passphrase: %v\n%s", err, out)
	}
	t.Setenv("VIGIL_KEY_PASSPHRASE", "alice's passphrase")
	if out, err := signA(); err == nil || !strings.Contains(err.Error(), "-partial") {
		t.Fatalf("one signature of a 2-of-3 root without -partial: %v\n%s", err, out)
	}
	out, err := signA("-partial")
	if err != nil || !strings.Contains(out, "1 of 2") || !strings.Contains(out, "NOT met") {
		t.Fatalf("partial root: %v\n%s", err, out)
	}
	staged := filepath.Join(stage, "root/1.root.json")
	// Not publishable yet.
	if out, err := release_(t, "publish", "-from", stage, "-to", k("eu")); err == nil || exitCode(err) != exitRefused {
		t.Fatalf("publish of a root below its threshold: %v\n%s", err, out)
	}

	// Signer B gets a copy on machine B and adds a signature there.
	copyB := k("machineB/1.root.json")
	copyFile(t, staged, copyB)
	t.Setenv("VIGIL_KEY_PASSPHRASE", "bob's passphrase")
	// A -stage that is not there (B forgot to copy it) is refused before anything is signed,
	// not created and the root counted against its own keys alone.
	if out, err := release_(t, "sign", "--add-signature", copyB, "-key", k("machineB/root-b.key"), "-stage", k("machineB/no-stage")); err == nil || !strings.Contains(err.Error(), "flag -stage") {
		t.Fatalf("--add-signature with a missing -stage: %v\n%s", err, out)
	}
	out = mustRelease(t, "sign", "--add-signature", copyB, "-key", k("machineB/root-b.key"))
	if !strings.Contains(out, "root version 1") || !strings.Contains(out, "thresholds met") {
		t.Fatalf("B's signature:\n%s", out)
	}
	// An intruder adds a signature to another copy: it counts for nothing.
	copyX := k("intruder/1.root.json")
	copyFile(t, staged, copyX)
	out = mustRelease(t, "sign", "--add-signature", copyX, "-key", k("intruder.key"))
	if !strings.Contains(out, "1 of 2") {
		t.Fatalf("intruder's signature counted:\n%s", out)
	}
	// A copy whose payload was changed does not merge.
	bad := k("tampered.json")
	tamperPayload(t, copyX, bad)
	if out, err := release_(t, "sign", "--merge", "-out", staged, staged, bad); !errors.Is(err, release.ErrMixAndMatch) {
		t.Fatalf("merge of a tampered copy: %v\n%s", err, out)
	}
	// Merging the intruder's copy alone does not reach the threshold.
	mustRelease(t, "sign", "--merge", "-out", staged, staged, copyX)
	if out, err := release_(t, "publish", "-from", stage, "-to", k("eu")); err == nil || exitCode(err) != exitRefused {
		t.Fatalf("publish with the intruder's signature: %v\n%s", err, out)
	}
	// B's copy completes it.
	out = mustRelease(t, "sign", "--merge", "-out", staged, staged, copyB)
	if !strings.Contains(out, "thresholds met") {
		t.Fatalf("merge:\n%s", out)
	}
	mustRelease(t, "publish", "-from", stage, "-to", k("eu"))
	if _, err := release.ParseTrustedRoot(readFile(t, filepath.Join(k("eu"), "root/1.root.json"))); err != nil {
		t.Fatalf("published root: %v", err)
	}
}

func stageListing(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			data, _ := os.ReadFile(p)
			b.WriteString(p + " " + sha256Hex(data) + "\n")
		}
		return nil
	})
	return b.String()
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, readFile(t, from), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// resign replaces the signatures of an envelope with one by the key file at keyPath.
func resign(t *testing.T, envelope []byte, keyPath string) []byte {
	t.Helper()
	env, err := release.ParseEnvelope(envelope)
	if err != nil {
		t.Fatal(err)
	}
	key, err := loadSigner("key", keyPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := key.Sign(release.PAE(env.PayloadType, env.Payload), "")
	if err != nil {
		t.Fatal(err)
	}
	env.Signatures = []release.Signature{{KeyID: key.ID(), Sig: s}}
	out, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tamperPayload writes to `to` the envelope at `from` with one byte of its payload changed
// (its expiry year), keeping the signatures.
func tamperPayload(t *testing.T, from, to string) {
	t.Helper()
	env, err := release.ParseEnvelope(readFile(t, from))
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(env.Payload), `"expires":"`) + len(`"expires":"`) + 3
	env.Payload[i]++
	out, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, out, 0o644); err != nil {
		t.Fatal(err)
	}
}
