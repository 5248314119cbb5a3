package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

func release_(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runRelease(context.Background(), args, &out, &errb)
	return out.String() + errb.String(), err
}

// exitCode is the process exit code main would use for err.
func exitCode(err error) int {
	var coded interface{ ExitCode() int }
	if errors.As(err, &coded) {
		return coded.ExitCode()
	}
	if err != nil {
		return 2
	}
	return 0
}

func mustRelease(t *testing.T, args ...string) string {
	t.Helper()
	out, err := release_(t, args...)
	if err != nil {
		t.Fatalf("vigil release %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// signRoot runs `vigil release sign root` for the keys named root, rel and ts in dir (the roles
// these tests do not exercise get operatorSetup's keys), signed with the key files signers; a
// signer starting with "-" is a flag (-partial).
func signRoot(t *testing.T, dir, stage, version, root, rel, ts string, signers ...string) (string, error) {
	t.Helper()
	k := func(n string) string { return filepath.Join(dir, n) }
	args := []string{"sign", "root", "-stage", stage, "-version", version, "-expires", "8760h",
		"-root", k(root + ".pub"), "-release", k(rel + ".pub"), "-timestamp", k(ts + ".pub"),
		"-trustees", k("trustee.pub"), "-trustees-threshold", "1", "-enrolment", k("enrol.pub"), "-privacy", k("privacy.pub")}
	for _, s := range signers {
		if strings.HasPrefix(s, "-") {
			args = append(args, s)
			continue
		}
		args = append(args, "-key", k(s+".key"))
	}
	return release_(t, args...)
}

// operatorSetup makes keys, a root and a staged release v1 the way an operator would: the
// offline root key encrypted under a passphrase, the online keys plain.
func operatorSetup(t *testing.T) (dir, stage string) {
	dir = t.TempDir()
	k := func(n string) string { return filepath.Join(dir, n) }
	t.Setenv("VIGIL_KEY_PASSPHRASE", "correct horse battery staple")
	mustRelease(t, "keygen", "-out", k("root"))
	for _, n := range []string{"release", "ts", "trustee", "enrol", "privacy"} {
		mustRelease(t, "keygen", "-unencrypted", "-out", k(n))
	}
	stage = k("stage")
	if out, err := signRoot(t, dir, stage, "1", "root", "release", "ts", "root"); err != nil {
		t.Fatalf("sign root: %v\n%s", err, out)
	}
	art := k("artifacts")
	os.MkdirAll(art, 0o755)
	os.WriteFile(filepath.Join(art, "model.bin"), []byte("global model weights v1"), 0o644)
	os.WriteFile(filepath.Join(art, "scaler.json"), []byte(`{"mean":[0.1]}`), 0o644)
	mustRelease(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "1",
		"-artifacts", art, "-rounds", "5", "-devices", "40", "-epsilon", "1.2", "-delta", "1e-5", "-eval", "eer=0.08,auc=0.97",
		"-release-key", k("release.key"), "-timestamp-key", k("ts.key"))
	return dir, stage
}

func TestReleaseCLIFlow(t *testing.T) {
	dir, stage := operatorSetup(t)
	root := filepath.Join(stage, "root", "1.root.json")
	dest := filepath.Join(dir, "eu")
	out := mustRelease(t, "publish", "-from", stage, "-to", dest)
	if !strings.Contains(out, dest+": published and verified: root version 1, vigil-ae version 1 (2 artifact(s), pointer)") {
		t.Fatalf("publish output:\n%s", out)
	}
	out = mustRelease(t, "verify", "-root", root, "-model", "vigil-ae", dest)
	t.Logf("verify:\n%s", out)
	if !strings.HasPrefix(out, "OK "+dest+": vigil-ae version 1") || !strings.Contains(out, "model.bin") {
		t.Fatalf("verify output:\n%s", out)
	}
	out = mustRelease(t, "inspect", filepath.Join(dest, "releases/vigil-ae/latest.json"))
	if !strings.HasPrefix(out, "NOT VERIFIED") || !strings.Contains(out, `"version": 1`) {
		t.Fatalf("inspect output:\n%s", out)
	}

	// Publishing again is harmless; the store keeps one release.
	mustRelease(t, "publish", "-from", stage, "-to", dest)

	// Installed version 1: verify says so, and it is not a failure.
	if out, err := release_(t, "verify", "-root", root, "-model", "vigil-ae", "-installed", "1", dest); err != nil || !strings.HasPrefix(out, "UP TO DATE") {
		t.Fatalf("verify with v1 installed: %v\n%s", err, out)
	}
	// Verifying after the pointer expired names the pointer and the expiry.
	if out, err := release_(t, "verify", "-root", root, "-model", "vigil-ae", "-at", "2099-01-01T00:00:00Z", dest); err == nil ||
		!strings.Contains(out, "expired") {
		t.Fatalf("verify far in the future: %v\n%s", err, out)
	}
	// Tamper with an artifact: verify names the object and the mismatch.
	art := filepath.Join(dest, "releases/vigil-ae/1/artifacts/model.bin")
	if err := os.WriteFile(art, []byte("global model weights v1 + backdoor"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := release_(t, "verify", "-root", root, "-model", "vigil-ae", dest)
	t.Logf("tampered artifact:\n%s", out)
	if err == nil || !strings.Contains(out, "FAIL") || !strings.Contains(err.Error(), "releases/vigil-ae/1/artifacts/model.bin") ||
		!strings.Contains(err.Error(), "hash mismatch") {
		t.Fatalf("tampered artifact: %v\n%s", err, out)
	}
	// A damaged staged artifact is refused before anything is published: a new region was
	// given the root first.
	staged := filepath.Join(stage, "releases/vigil-ae/1/artifacts/model.bin")
	if err := os.WriteFile(staged, []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "us")
	if out, err := release_(t, "publish", "-from", stage, "-to", fresh); err == nil || !strings.Contains(out+err.Error(), "releases/vigil-ae/1/artifacts/model.bin") {
		t.Fatalf("publish of a damaged stage: %v\n%s", err, out)
	}
	if entries, _ := os.ReadDir(fresh); len(entries) > 0 {
		t.Fatalf("publish of a damaged stage wrote %d entries to a new region", len(entries))
	}
}

func TestReleaseCLIRootRotation(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	mustRelease(t, "keygen", "-out", k("root2"))
	for _, n := range []string{"release2", "ts2"} {
		mustRelease(t, "keygen", "-unencrypted", "-out", k(n))
	}
	// Root v2 signed by the old root key only: refused before anything is written.
	if out, err := signRoot(t, dir, stage, "2", "root2", "release2", "ts2", "root"); err == nil {
		t.Fatalf("root v2 without its own root key signed:\n%s", out)
	}
	// Root v2 signed by the new root key only: the previous root's threshold is missing.
	if out, err := signRoot(t, dir, stage, "2", "root2", "release2", "ts2", "root2"); err == nil ||
		!strings.Contains(err.Error(), "root version 1") {
		t.Fatalf("root v2 without the old root key: %v\n%s", err, out)
	}
	if out, err := signRoot(t, dir, stage, "2", "root2", "release2", "ts2", "root", "root2"); err != nil {
		t.Fatalf("sign root v2: %v\n%s", err, out)
	}
	// The staged v1 pointer is signed by the old timestamp key: devices under root v2 would
	// refuse it, so publish refuses the stage before writing anything.
	dest := k("eu")
	if out, err := release_(t, "publish", "-from", stage, "-to", dest); err == nil || !strings.Contains(err.Error(), "releases/vigil-ae/latest.json") ||
		!strings.Contains(err.Error(), "untrusted key") || exitCode(err) != exitRefused {
		t.Fatalf("publish with old keys after rotation: %v\n%s", err, out)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Fatal("publish wrote to the region although the stage does not verify")
	}
	pinned := filepath.Join(stage, "root", "1.root.json")
	art := k("artifacts")
	mustRelease(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "2", "-artifacts", art,
		"-release-key", k("release2.key"), "-timestamp-key", k("ts2.key"))
	mustRelease(t, "publish", "-from", stage, "-to", dest)
	out := mustRelease(t, "verify", "-root", pinned, "-model", "vigil-ae", dest)
	if !strings.Contains(out, "version 2 (parent 1) verified against root version 2") {
		t.Fatalf("verify after rotation:\n%s", out)
	}
}

func TestReleaseCLIErrorsNameTheFlag(t *testing.T) {
	dir, stage := operatorSetup(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keygen", "-unencrypted"}, "-out"},
		{[]string{"keygen", "-out", filepath.Join(dir, "root")}, "already exists"},
		{[]string{"sign", "release", "-stage", stage, "-version", "3", "-artifacts", dir}, "-model"},
		{[]string{"sign", "release", "-stage", stage, "-model", "m", "-version", "3", "-artifacts", filepath.Join(dir, "nope"),
			"-release-key", filepath.Join(dir, "release.key"), "-timestamp-key", filepath.Join(dir, "ts.key")}, "-artifacts"},
		{[]string{"sign", "release", "-stage", stage, "-model", "m", "-version", "3", "-artifacts", filepath.Join(dir, "artifacts"),
			"-release-key", filepath.Join(dir, "release.pub"), "-timestamp-key", filepath.Join(dir, "ts.key")}, "-release-key"},
		{[]string{"sign", "release", "-stage", stage, "-model", "m", "-version", "3", "-expires", "soon"}, "-expires"},
		{[]string{"sign", "root", "-stage", stage, "-version", "1", "-root", filepath.Join(dir, "root.pub")}, "-release"},
		{[]string{"verify", "-model", "vigil-ae", stage}, "-root"},
		{[]string{"verify", "-root", filepath.Join(dir, "root.pub"), "-model", "vigil-ae", stage}, "-root"},
		{[]string{"verify", "-root", filepath.Join(stage, "root/1.root.json"), "-model", "vigil-ae"}, "LOCATION"},
		{[]string{"verify", "-root", filepath.Join(stage, "root/1.root.json"), "-model", "vigil-ae", "http://x"}, "s3://"},
		{[]string{"publish", "-from", stage}, "-to"},
		{[]string{"publish", "-from", filepath.Join(dir, "nope"), "-to", filepath.Join(dir, "x")}, "-from"},
		{[]string{"inspect", filepath.Join(dir, "root.pub")}, "malformed"},
		{[]string{"bogus"}, "unknown command"},
	} {
		out, err := release_(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v does not mention %q\n%s", tc.args, err, tc.want, out)
		}
		t.Logf("%s: %v", tc.args[0], err)
	}
}

// TestReleaseCLIS3 publishes to and verifies an s3:// location on the test MinIO server.
func TestReleaseCLIS3(t *testing.T) {
	if os.Getenv("VIGIL_MINIO_ENDPOINT") == "" || os.Getenv("VIGIL_MINIO_ACCESS_KEY") == "" || os.Getenv("VIGIL_MINIO_SECRET_KEY") == "" {
		t.Skip("skipping: no MinIO server; set VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (see .ci/minio.sh)")
	}
	dir, stage := operatorSetup(t)
	var b [4]byte
	rand.Read(b[:])
	loc := "s3://vigil-cli-" + hex.EncodeToString(b[:]) + "/eu"
	// With the admin's credentials publish refuses; init-region makes the publisher.
	if out, err := release_(t, "publish", "-from", stage, "-to", loc); err == nil || !strings.Contains(err.Error(), "admin") {
		t.Fatalf("publish with the admin credentials: %v\n%s", err, out)
	}
	secret := filepath.Join(dir, "publisher.secret")
	mustRelease(t, "init-region", "-to", loc, "-publisher", "pub-"+hex.EncodeToString(b[:]), "-publisher-secret-file", secret)
	data, err := os.ReadFile(secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VIGIL_MINIO_ACCESS_KEY", "pub-"+hex.EncodeToString(b[:]))
	t.Setenv("VIGIL_MINIO_SECRET_KEY", strings.TrimSpace(string(data)))
	mustRelease(t, "publish", "-from", stage, "-to", loc, "-attempts", "2")
	out := mustRelease(t, "verify", "-root", filepath.Join(stage, "root/1.root.json"), "-model", "vigil-ae", loc)
	if !strings.HasPrefix(out, "OK "+loc+": vigil-ae version 1") {
		t.Fatalf("verify s3:\n%s", out)
	}
	out = mustRelease(t, "inspect", strings.TrimSuffix(loc, "/eu")+"/eu/releases/vigil-ae/latest.json")
	if !strings.Contains(out, "NOT VERIFIED") {
		t.Fatalf("inspect s3:\n%s", out)
	}
	// A wrong model name: the pointer does not exist, and verify says which object is missing.
	out, err = release_(t, "verify", "-root", filepath.Join(stage, "root/1.root.json"), "-model", "other", loc)
	if err == nil || !strings.Contains(out, "missing object") || !strings.Contains(out, "releases/other/latest.json") {
		t.Fatalf("verify missing model: %v\n%s", err, out)
	}
}

// TestReleaseCLIPublishAll checks that publish sends only the release the staged pointer names
// unless -all is given, and that -all fills in every older staged release a region lacks.
func TestReleaseCLIPublishAll(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	mustRelease(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "2", "-artifacts", k("artifacts"),
		"-release-key", k("release.key"), "-timestamp-key", k("ts.key"))
	late := k("late-region")
	mustRelease(t, "publish", "-from", stage, "-to", late)
	if _, err := os.Stat(filepath.Join(late, "releases/vigil-ae/1/manifest.json")); err == nil {
		t.Fatal("publish without -all sent version 1")
	}
	out := mustRelease(t, "publish", "-from", stage, "-to", late, "-all")
	if !strings.Contains(out, "vigil-ae version 1, vigil-ae version 2") {
		t.Fatalf("publish -all:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(late, "releases/vigil-ae/1/manifest.json")); err != nil {
		t.Fatalf("publish -all did not send version 1: %v", err)
	}
	out = mustRelease(t, "status", "-root", filepath.Join(stage, "root/1.root.json"), "-warn-pointer", "1m", late)
	if !strings.Contains(out, "vigil-ae version 2 verified (versions stored: [1 2])") {
		t.Fatalf("status:\n%s", out)
	}
	// A stored copy of a root cut short is reported, although devices pinned to it never
	// read it: a new device or an operator would.
	data, err := os.ReadFile(filepath.Join(late, "root/1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(late, "root/1.root.json"), data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = release_(t, "status", "-root", filepath.Join(stage, "root/1.root.json"), "-warn-pointer", "1m", late)
	if err == nil || !strings.Contains(out, "FAIL") || !strings.Contains(out, "root/1.root.json") {
		t.Fatalf("status of a region whose root copy is damaged: %v\n%s", err, out)
	}
	// Help goes to stdout when asked for, and is not an error.
	if out, err := release_(t, "publish", "-h"); err != nil || !strings.Contains(out, "Exit codes") {
		t.Fatalf("publish -h: %v\n%s", err, out)
	}
}

// TestReleaseInitRegionUsage: a bad bucket name and the admin as publisher were reported with
// exit 4, "an outage: run the same command again" (a review). What can be checked without the
// server is a usage error naming the flag, before the server is contacted (nothing listens at
// the endpoint here, which would be exit 4) and before a secret file is made.
func TestReleaseInitRegionUsage(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("VIGIL_MINIO_ACCESS_KEY", "adminuser")
	t.Setenv("VIGIL_MINIO_SECRET_KEY", "adminsecret123")
	const down = "s3+http://127.0.0.1:1/"
	pub, rd := filepath.Join(dir, "pub.secret"), filepath.Join(dir, "reader.secret")
	for _, tc := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"bucket name", []string{"-to", down + "b2", "-publisher", "p"}, "flag -to", exitUsage},
		{"bucket name with capitals", []string{"-to", down + "Releases", "-publisher", "p"}, "flag -to", exitUsage},
		{"admin as publisher", []string{"-to", down + "bkt3", "-publisher", "adminuser"}, "flag -publisher", exitUsage},
		{"admin as reader", []string{"-to", down + "bkt3", "-publisher", "p", "-reader", "adminuser", "-reader-secret-file", rd}, "flag -reader", exitUsage},
		{"reader as publisher", []string{"-to", down + "bkt3", "-publisher", "same", "-reader", "same", "-reader-secret-file", rd}, "-reader and -publisher", exitUsage},
		{"one secret file for both", []string{"-to", down + "bkt3", "-publisher", "p", "-reader", "r", "-reader-secret-file", pub}, "-reader-secret-file and -publisher-secret-file", exitUsage},
		// The control: flags that pass reach the server, which is down.
		{"server down", []string{"-to", down + "bkt3", "-publisher", "p", "-reader", "r", "-reader-secret-file", rd}, "127.0.0.1:1", exitRegion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := release_(t, append([]string{"init-region", "-publisher-secret-file", pub}, tc.args...)...)
			if exitCode(err) != tc.code || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("exit %d (want %d), error %v (want it to name %q)\n%s", exitCode(err), tc.code, err, tc.want, out)
			}
			for _, f := range []string{pub, rd} {
				if _, err := os.Stat(f); err == nil {
					t.Fatalf("%s was made", f)
				}
			}
		})
	}
}

// TestReleaseInitRegionExistingUser: a review named another region's publisher as a new
// region's reader with a new secret file; init-region gave the user the new secret, locking the
// other region's publishing out. That is refused with exit 2 naming the flag, the secret files
// are not made, and the user keeps its secret; with the user's own secret file it is set up.
func TestReleaseInitRegionExistingUser(t *testing.T) {
	if os.Getenv("VIGIL_MINIO_ENDPOINT") == "" || os.Getenv("VIGIL_MINIO_ACCESS_KEY") == "" || os.Getenv("VIGIL_MINIO_SECRET_KEY") == "" {
		t.Skip("skipping: no MinIO server; set VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (see .ci/minio.sh)")
	}
	dir := t.TempDir()
	k := func(n string) string { return filepath.Join(dir, n) }
	var b [4]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	eu, us := "s3://vigil-eu-"+id, "s3://vigil-us-"+id
	mustRelease(t, "init-region", "-to", eu, "-publisher", "pub-eu-"+id, "-publisher-secret-file", k("eu.secret"))
	euSecret := readFile(t, k("eu.secret"))
	out, err := release_(t, "init-region", "-to", us, "-publisher", "pub-us-"+id, "-publisher-secret-file", k("us.secret"),
		"-reader", "pub-eu-"+id, "-reader-secret-file", k("reader.secret"))
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "flag -reader") || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("init-region with an existing user as the new reader: exit %d, %v\n%s", exitCode(err), err, out)
	}
	for _, f := range []string{"reader.secret", "us.secret"} {
		if _, err := os.Stat(k(f)); err == nil {
			t.Fatalf("the refused run made %s: run again, it would take the file for the user's own secret", f)
		}
	}
	// eu's publisher still has its secret: init-region of eu, which checks with it, passes.
	mustRelease(t, "init-region", "-to", eu, "-publisher", "pub-eu-"+id, "-publisher-secret-file", k("eu.secret"))
	// Given the user's own secret file, the user is set up as us's reader.
	mustRelease(t, "init-region", "-to", us, "-publisher", "pub-us-"+id, "-publisher-secret-file", k("us.secret"),
		"-reader", "pub-eu-"+id, "-reader-secret-file", k("eu.secret"))
	if !bytes.Equal(readFile(t, k("eu.secret")), euSecret) {
		t.Fatal("eu.secret changed")
	}
	mustRelease(t, "init-region", "-to", eu, "-publisher", "pub-eu-"+id, "-publisher-secret-file", k("eu.secret"))
}

// TestReleaseStatusJunkOverWriteOnce: with the admin's credentials a plain PUT over root/1 and
// over key epoch 1 of a published region. Status read only the newest version of each and
// failed (exit 1) on every run, while devices and publish read past the junk and publish said
// "published and verified" (a review). Now status reads the versions oldest first as devices
// do and warns (exit 3) that the newest does not verify; publishing again puts the genuine
// documents back on top, and status is clean.
func TestReleaseStatusJunkOverWriteOnce(t *testing.T) {
	if os.Getenv("VIGIL_MINIO_ENDPOINT") == "" || os.Getenv("VIGIL_MINIO_ACCESS_KEY") == "" || os.Getenv("VIGIL_MINIO_SECRET_KEY") == "" {
		t.Skip("skipping: no MinIO server; set VIGIL_MINIO_ENDPOINT, VIGIL_MINIO_ACCESS_KEY, VIGIL_MINIO_SECRET_KEY (see .ci/minio.sh)")
	}
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(k("ck1.bin"), bytes.Repeat([]byte{7}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRelease(t, "sign", "keyepoch", "-stage", stage, "-epoch", "1", "-params", "p1", "-public-key", k("ck1.bin"), "-key", k("trustee.key"))
	var b [4]byte
	rand.Read(b[:])
	loc := "s3://vigil-junk-" + hex.EncodeToString(b[:])
	cfg, _, err := s3Location(loc)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := store.NewMinIO(cfg) // the admin's credentials, from the environment
	if err != nil {
		t.Fatal(err)
	}
	mustRelease(t, "init-region", "-to", loc, "-publisher", "pub-"+hex.EncodeToString(b[:]), "-publisher-secret-file", k("pub.secret"))
	t.Setenv("VIGIL_MINIO_ACCESS_KEY", "pub-"+hex.EncodeToString(b[:]))
	t.Setenv("VIGIL_MINIO_SECRET_KEY", strings.TrimSpace(string(readFile(t, k("pub.secret")))))
	mustRelease(t, "publish", "-from", stage, "-to", loc, "-attempts", "1")
	status := func() (string, error) {
		return release_(t, "status", "-root", filepath.Join(stage, "root/1.root.json"), "-warn-pointer", "1m", loc)
	}
	if out, err := status(); err != nil {
		t.Fatalf("status after publish: %v\n%s", err, out)
	}
	for _, key := range []string{release.RootKey(1), release.KeyEpochKey(1)} {
		if err := admin.Put(context.Background(), key, []byte(`{"junk":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := status()
	t.Logf("status after the plain PUTs:\n%s", out)
	if exitCode(err) != exitWarn || strings.Contains(out, "FAIL") ||
		!strings.Contains(out, "WARN "+release.RootKey(1)+": the newest stored version does not verify") ||
		!strings.Contains(out, "WARN "+release.KeyEpochKey(1)+": the newest stored version does not verify") ||
		!strings.Contains(out, "OK   key epoch 1 expires") {
		t.Fatalf("status after the plain PUTs: exit %d, %v\n%s", exitCode(err), err, out)
	}
	mustRelease(t, "publish", "-from", stage, "-to", loc, "-attempts", "1")
	if out, err := status(); err != nil {
		t.Fatalf("status after publishing again: %v\n%s", err, out)
	}
}

// TestReleaseInspectRegionLocations checks that inspect reads an object at the locations the
// other release commands take, s3+http(s)://HOST:PORT/BUCKET/KEY included, where it read that
// as a file name ("FILE ...: no such file or directory"), and names an unknown scheme.
func TestReleaseInspectRegionLocations(t *testing.T) {
	t.Setenv("VIGIL_MINIO_ENDPOINT", "")
	t.Setenv("VIGIL_MINIO_ACCESS_KEY", "reader")
	t.Setenv("VIGIL_MINIO_SECRET_KEY", "reader-secret")
	for _, tc := range []struct{ loc, want string }{
		{"s3+http://127.0.0.1:1/vigil-releases/root/1.root.json", "127.0.0.1:1"},
		{"s3+https://127.0.0.1:1/vigil-releases/root/1.root.json", "127.0.0.1:1"},
		{"s3+http://127.0.0.1:1/vigil-releases", "name an object"},
		{"s3://vigil-releases/root/1.root.json", "VIGIL_MINIO_ENDPOINT"},
		{"http://127.0.0.1:1/vigil-releases/root/1.root.json", "unknown scheme"},
	} {
		out, err := release_(t, "inspect", tc.loc)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "no such file") || exitCode(err) != 2 {
			t.Errorf("inspect %s: exit %d, error %v, want one naming %q\n%s", tc.loc, exitCode(err), err, tc.want, out)
		}
	}

	s := miniotest.Start(t)
	_, stage := operatorSetup(t)
	access, secret := s.RootCredentials()
	t.Setenv("VIGIL_MINIO_ACCESS_KEY", access)
	t.Setenv("VIGIL_MINIO_SECRET_KEY", secret)
	st := s.Store(t, "vigil-releases")
	data := readFile(t, filepath.Join(stage, "releases/vigil-ae/latest.json"))
	if err := st.Put(context.Background(), "releases/vigil-ae/latest.json", data); err != nil {
		t.Fatal(err)
	}
	loc := "s3+http://" + s.Endpoint() + "/vigil-releases/releases/vigil-ae/latest.json"
	if out := mustRelease(t, "inspect", loc); !strings.HasPrefix(out, "NOT VERIFIED: "+loc) || !strings.Contains(out, `"version": 1`) {
		t.Fatalf("inspect %s:\n%s", loc, out)
	}
	t.Setenv("VIGIL_MINIO_ENDPOINT", s.Endpoint())
	if out := mustRelease(t, "inspect", "s3://vigil-releases/releases/vigil-ae/latest.json"); !strings.Contains(out, `"version": 1`) {
		t.Fatalf("inspect s3://:\n%s", out)
	}
}

// TestReleaseSignRefusesMissingStage checks that sign release|latest|keyepoch refuse a -stage
// that does not exist, naming the flag, and do not make it (they made the mistyped directory and
// then failed for want of a root in it); sign root still makes a new stage (operatorSetup).
func TestReleaseSignRefusesMissingStage(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	if err := os.WriteFile(k("ck1.bin"), bytes.Repeat([]byte{7}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	typo := stage + "-typo"
	for _, args := range [][]string{
		{"sign", "release", "-stage", typo, "-model", "vigil-ae", "-version", "2", "-artifacts", k("artifacts"),
			"-release-key", k("release.key"), "-timestamp-key", k("ts.key")},
		{"sign", "latest", "-stage", typo, "-model", "vigil-ae", "-timestamp-key", k("ts.key")},
		{"sign", "keyepoch", "-stage", typo, "-epoch", "1", "-params", "p1", "-public-key", k("ck1.bin"), "-key", k("trustee.key")},
	} {
		out, err := release_(t, args...)
		if err == nil || !strings.Contains(err.Error(), "flag -stage") || exitCode(err) != 2 {
			t.Errorf("%v: exit %d, error %v, want one naming -stage\n%s", args[:2], exitCode(err), err, out)
		}
		if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v made the mistyped stage %s (%v)", args[:2], typo, err)
		}
	}
	// The same commands on the real stage still work.
	mustRelease(t, "sign", "latest", "-stage", stage, "-model", "vigil-ae", "-timestamp-key", k("ts.key"))
	mustRelease(t, "sign", "keyepoch", "-stage", stage, "-epoch", "1", "-params", "p1", "-public-key", k("ck1.bin"), "-key", k("trustee.key"))
}
