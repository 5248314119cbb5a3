package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/release"
)

// copyDir copies the tree at from to to (a fresh copy of a stage for each case).
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		copyFile(t, p, filepath.Join(to, rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// flipSignature flips one bit of the first signature of the envelope at path; the file stays
// canonical.
func flipSignature(t *testing.T, path string) {
	t.Helper()
	env, err := release.ParseEnvelope(readFile(t, path))
	if err != nil {
		t.Fatal(err)
	}
	env.Signatures[0].Sig[0] ^= 1
	out, err := env.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// signKeyEpoch stages key epoch e (collective key ck<e>.bin in dir) signed with keyName.
func signKeyEpoch(t *testing.T, dir, stage, e, keyName string, extra ...string) string {
	t.Helper()
	ck := filepath.Join(dir, "ck"+e+".bin")
	if _, err := os.Stat(ck); err != nil {
		os.WriteFile(ck, []byte("collective public key of epoch "+e), 0o644)
	}
	args := append([]string{"sign", "keyepoch", "-stage", stage, "-epoch", e, "-params", "p1", "-public-key", ck,
		"-key", filepath.Join(dir, keyName+".key")}, extra...)
	return mustRelease(t, args...)
}

// TestReleaseCLIPendingRoot: a root ceremony under way (review 3, finding 1). Root v2 is in the
// stage with its own signature but not yet v1's, as after step 6's `sign root -partial`: every
// command works from root v1 and names the pending file in a warning, publish publishes nothing
// above root v1, and --add-signature exits 0 after writing. A pending root that is not the
// newest, or a newest one that fails for another reason than missing signatures, still stops
// them.
func TestReleaseCLIPendingRoot(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	for _, n := range []string{"root2", "release2", "ts2"} {
		mustRelease(t, "keygen", "-unencrypted", "-out", k(n))
	}
	signKeyEpoch(t, dir, stage, "1", "trustee")
	// A key epoch for a trustee to sign, signed so far by a key that does not count.
	copyDir(t, stage, k("scratch"))
	signKeyEpoch(t, dir, k("scratch"), "3", "enrol", "-partial")
	copyFile(t, filepath.Join(k("scratch"), release.KeyEpochKey(3)), k("ke3.json"))
	// Signed by its own (new) root key only: v1's root key has still to sign.
	if out, err := signRoot(t, dir, stage, "2", "root2", "release2", "ts2", "root2", "-partial"); err != nil || !strings.Contains(out, "NOT met") {
		t.Fatalf("partial root v2: %v\n%s", err, out)
	}
	// The same root document, but of version 3 (a file copied under the wrong name).
	if out, err := signRoot(t, dir, k("other"), "3", "root2", "release2", "ts2", "root2", "-partial"); err != nil {
		t.Fatalf("partial root v3: %v\n%s", err, out)
	}

	n := 0
	fresh := func() string {
		n++
		s := k("stage-" + string(rune('a'+n)))
		copyDir(t, stage, s)
		return s
	}
	for _, tc := range []struct {
		name string
		args func(s string) []string
		want string
	}{
		{"sign latest", func(s string) []string {
			return []string{"sign", "latest", "-stage", s, "-model", "vigil-ae", "-timestamp-key", k("ts.key")}
		}, "pointer to vigil-ae version 1"},
		{"sign release", func(s string) []string {
			return []string{"sign", "release", "-stage", s, "-model", "vigil-ae", "-version", "2", "-artifacts", k("artifacts"),
				"-release-key", k("release.key"), "-timestamp-key", k("ts.key")}
		}, "vigil-ae version 2 (parent 1)"},
		{"sign keyepoch", func(s string) []string {
			os.WriteFile(k("ck2.bin"), []byte("collective public key of epoch 2"), 0o644)
			return []string{"sign", "keyepoch", "-stage", s, "-epoch", "2", "-params", "p1", "-public-key", k("ck2.bin"), "-key", k("trustee.key")}
		}, "key epoch 2"},
		{"add signature", func(s string) []string {
			return []string{"sign", "--add-signature", k("ke3.json"), "-key", k("trustee.key"), "-stage", s}
		}, "trustees role of root version 1: 1 of 1 signature(s)"},
		{"publish", func(s string) []string {
			return []string{"publish", "-from", s, "-to", k("eu")}
		}, k("eu") + ": published and verified: root version 1, key epoch 1, vigil-ae version 1 (2 artifact(s), pointer)"},
	} {
		s := fresh()
		out, err := release_(t, tc.args(s)...)
		t.Logf("%s:\n%s", tc.name, out)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s with a pending root v2: %v (exit %d)\n%s", tc.name, err, exitCode(err), out)
		}
		if warn := "warning: " + filepath.Join(s, "root/2.root.json") + " has not met its thresholds yet"; !strings.Contains(out, warn) {
			t.Errorf("%s: no warning %q:\n%s", tc.name, warn, out)
		}
	}
	if _, err := os.Stat(filepath.Join(k("eu"), "root/2.root.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("publish published the pending root v2 (%v)", err)
	}

	// Once v1's root key has signed too, root v2 is in force: its timestamp key signs.
	s := fresh()
	copyFile(t, filepath.Join(s, "root/2.root.json"), k("2.root.json"))
	mustRelease(t, "sign", "--add-signature", k("2.root.json"), "-key", k("root.key"), "-stage", s)
	mustRelease(t, "sign", "--merge", "-out", filepath.Join(s, "root/2.root.json"), filepath.Join(s, "root/2.root.json"), k("2.root.json"))
	if out, err := release_(t, "sign", "latest", "-stage", s, "-model", "vigil-ae", "-timestamp-key", k("ts2.key")); err != nil || strings.Contains(out, "warning") {
		t.Fatalf("sign latest under the completed root v2: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name   string
		damage func(s string)
	}{
		{"pending root not the newest", func(s string) {
			copyFile(t, filepath.Join(s, "root/2.root.json"), filepath.Join(s, "root/3.root.json"))
		}},
		{"invalid signature by its own key", func(s string) { flipSignature(t, filepath.Join(s, "root/2.root.json")) }},
		{"wrong version", func(s string) {
			copyFile(t, filepath.Join(k("other"), "root/3.root.json"), filepath.Join(s, "root/2.root.json"))
		}},
		{"cut short", func(s string) {
			data := readFile(t, filepath.Join(s, "root/2.root.json"))
			os.WriteFile(filepath.Join(s, "root/2.root.json"), data[:len(data)/2], 0o644)
		}},
	} {
		s := fresh()
		tc.damage(s)
		out, err := release_(t, "sign", "latest", "-stage", s, "-model", "vigil-ae", "-timestamp-key", k("ts.key"))
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "root/2.root.json") {
			t.Errorf("%s: sign latest: %v (exit %d)\n%s", tc.name, err, exitCode(err), out)
		}
		dest := k("dest-" + filepath.Base(s))
		out, err = release_(t, "publish", "-from", s, "-to", dest)
		if exitCode(err) != exitRefused || !strings.Contains(err.Error(), "root/2.root.json") {
			t.Errorf("%s: publish: %v (exit %d)\n%s", tc.name, err, exitCode(err), out)
		}
		if _, err := os.Stat(dest); err == nil {
			t.Errorf("%s: publish wrote to the region", tc.name)
		}
	}
}
