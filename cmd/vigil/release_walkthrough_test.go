package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/internal/miniotest"
)

// TestReleaseOperatorWalkthrough runs the README's operator walk-through, command by command,
// against two MinIO servers of its own (eu and us): region setup with the admin credentials,
// a 2-of-3 root signed by two offline signers on separate machines, a first release, a region
// outage during a publication, and a root rotation that replaces the online keys.
func TestReleaseOperatorWalkthrough(t *testing.T) {
	eu, us := miniotest.Start(t), miniotest.Start(t)
	dir := t.TempDir()
	k := func(n string) string { return filepath.Join(dir, n) }
	euLoc := "s3+http://" + eu.Endpoint() + "/vigil-releases"
	usLoc := "s3+http://" + us.Endpoint() + "/vigil-releases"
	regions := euLoc + "," + usLoc
	asAdmin := func(s *miniotest.Server) {
		access, secret := s.RootCredentials()
		t.Setenv("VIGIL_MINIO_ACCESS_KEY", access)
		t.Setenv("VIGIL_MINIO_SECRET_KEY", secret)
	}
	asPublisher := func() {
		t.Setenv("VIGIL_MINIO_ACCESS_KEY", "vigil-publisher")
		t.Setenv("VIGIL_MINIO_SECRET_KEY", strings.TrimSpace(string(readFile(t, k("publisher.secret")))))
	}
	step := func(args ...string) string {
		t.Helper()
		out := mustRelease(t, args...)
		t.Logf("$ vigil release %s\n%s", strings.Join(args, " "), out)
		return out
	}
	t.Setenv("VIGIL_MINIO_ENDPOINT", "")

	// 1. Each region's admin, once, with the MinIO root credentials.
	for _, r := range []struct {
		s   *miniotest.Server
		loc string
	}{{eu, euLoc}, {us, usLoc}} {
		asAdmin(r.s)
		step("init-region", "-to", r.loc, "-publisher", "vigil-publisher", "-publisher-secret-file", k("publisher.secret"),
			"-reader", "vigil-device", "-reader-secret-file", k("device.secret"))
	}

	// 2. Keys: Alice and Bob each on their own offline machine, the third root key in a safe;
	// the online keys on the release server.
	t.Setenv("VIGIL_KEY_PASSPHRASE", "alice")
	step("keygen", "-out", k("alice/root-alice"))
	t.Setenv("VIGIL_KEY_PASSPHRASE", "bob")
	step("keygen", "-out", k("bob/root-bob"))
	t.Setenv("VIGIL_KEY_PASSPHRASE", "safe")
	step("keygen", "-out", k("safe/root-safe"))
	for _, n := range []string{"release-1", "timestamp-1", "release-2", "timestamp-2", "trustee", "enrolment", "privacy"} {
		step("keygen", "-unencrypted", "-out", k("online/"+n))
	}
	rootArgs := func(version, rel, ts, key string, extra ...string) []string {
		return append([]string{"sign", "root", "-stage", k("stage"), "-version", version,
			"-root", k("alice/root-alice.pub") + "," + k("bob/root-bob.pub") + "," + k("safe/root-safe.pub"), "-root-threshold", "2",
			"-release", k("online/" + rel + ".pub"), "-timestamp", k("online/" + ts + ".pub"),
			"-trustees", k("online/trustee.pub"), "-trustees-threshold", "1",
			"-enrolment", k("online/enrolment.pub"), "-privacy", k("online/privacy.pub"), "-key", key}, extra...)
	}

	// 3. Root v1: Alice signs on her machine, Bob adds his signature on his, the copies merge.
	t.Setenv("VIGIL_KEY_PASSPHRASE", "alice")
	step(rootArgs("1", "release-1", "timestamp-1", k("alice/root-alice.key"), "-partial")...)
	copyFile(t, k("stage/root/1.root.json"), k("bob/1.root.json"))
	t.Setenv("VIGIL_KEY_PASSPHRASE", "bob")
	step("sign", "--add-signature", k("bob/1.root.json"), "-key", k("bob/root-bob.key"))
	out := step("sign", "--merge", "-out", k("stage/root/1.root.json"), k("stage/root/1.root.json"), k("bob/1.root.json"))
	if !strings.Contains(out, "thresholds met") {
		t.Fatalf("root v1 after merge:\n%s", out)
	}

	// 4. Release v1, published to both regions with the publisher's credentials.
	os.MkdirAll(k("model-v1"), 0o755)
	os.WriteFile(k("model-v1/params.f64"), []byte("model v1"), 0o644)
	step("sign", "release", "-stage", k("stage"), "-model", "vigil-ae", "-version", "1", "-artifacts", k("model-v1"),
		"-release-key", k("online/release-1.key"), "-timestamp-key", k("online/timestamp-1.key"))
	asPublisher()
	step("publish", "-from", k("stage"), "-to", regions)
	t.Setenv("VIGIL_MINIO_ACCESS_KEY", "vigil-device")
	t.Setenv("VIGIL_MINIO_SECRET_KEY", strings.TrimSpace(string(readFile(t, k("device.secret")))))
	out, err := release_(t, "status", "-root", k("stage/root/1.root.json"), euLoc, usLoc)
	t.Logf("$ vigil release status ...\n%s", out)
	if err != nil || strings.Count(out, "vigil-ae version 1 verified") != 2 {
		t.Fatalf("status after v1: %v\n%s", err, out)
	}

	// 5. Rotation: root v2 replaces the online keys (say the release server was compromised).
	// Alice and Bob sign again, each on their machine; root v2 needs two of v1's root keys and
	// two of its own, which are the same three.
	t.Setenv("VIGIL_KEY_PASSPHRASE", "alice")
	step(rootArgs("2", "release-2", "timestamp-2", k("alice/root-alice.key"), "-partial")...)
	copyFile(t, k("stage/root/2.root.json"), k("bob/2.root.json"))
	t.Setenv("VIGIL_KEY_PASSPHRASE", "bob")
	step("sign", "--add-signature", k("bob/2.root.json"), "-key", k("bob/root-bob.key"), "-stage", k("stage"))
	out = step("sign", "--merge", "-out", k("stage/root/2.root.json"), k("stage/root/2.root.json"), k("bob/2.root.json"), "-stage", k("stage"))
	if !strings.Contains(out, "thresholds met") {
		t.Fatalf("root v2 after merge:\n%s", out)
	}
	os.MkdirAll(k("model-v2"), 0o755)
	os.WriteFile(k("model-v2/params.f64"), []byte("model v2"), 0o644)
	step("sign", "release", "-stage", k("stage"), "-model", "vigil-ae", "-version", "2", "-artifacts", k("model-v2"),
		"-release-key", k("online/release-2.key"), "-timestamp-key", k("online/timestamp-2.key"))

	// 6. us is down during the publication: eu gets root v2 and release v2, us is reported
	// failed (exit code 4), and the same command completes us once it is back.
	us.Stop()
	asPublisher()
	out, err = release_(t, "publish", "-from", k("stage"), "-to", regions, "-attempts", "2", "-backoff", "100ms")
	t.Logf("$ vigil release publish (us down)\n%s%v", out, err)
	if exitCode(err) != exitRegion || !strings.Contains(out, euLoc+": published and verified: root version 1, root version 2") ||
		!strings.Contains(out, usLoc+": FAILED") {
		t.Fatalf("publish with us down: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	out, err = release_(t, "status", "-root", k("stage/root/1.root.json"), euLoc, usLoc)
	t.Logf("$ vigil release status (us down)\n%s%v", out, err)
	if exitCode(err) != exitRefused || !strings.Contains(out, "vigil-ae version 2 verified") || !strings.Contains(out, "FAIL") {
		t.Fatalf("status with us down: %v (exit %d)\n%s", err, exitCode(err), out)
	}
	if err := us.Restart(); err != nil {
		t.Fatal(err)
	}
	step("publish", "-from", k("stage"), "-to", regions)

	// 7. Devices pinned to root v1 follow the rotation in both regions.
	t.Setenv("VIGIL_MINIO_ACCESS_KEY", "vigil-device")
	t.Setenv("VIGIL_MINIO_SECRET_KEY", strings.TrimSpace(string(readFile(t, k("device.secret")))))
	for _, loc := range []string{euLoc, usLoc} {
		out := step("verify", "-root", k("stage/root/1.root.json"), "-model", "vigil-ae", loc)
		if !strings.Contains(out, "version 2 (parent 1) verified against root version 2") {
			t.Fatalf("device view of %s:\n%s", loc, out)
		}
	}
	out, err = release_(t, "status", "-root", k("stage/root/1.root.json"), "-warn-pointer", "7h", euLoc, usLoc)
	t.Logf("$ vigil release status -warn-pointer 7h ...\n%s", out)
	if exitCode(err) != exitWarn || strings.Count(out, "vigil-ae version 2 verified") != 2 || !strings.Contains(out, "WARN") {
		t.Fatalf("status after rotation (pointer within the warning window): %v\n%s", err, out)
	}
}
