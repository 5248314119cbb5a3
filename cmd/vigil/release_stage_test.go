package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

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

// TestReleaseCLIPendingRoot: a root ceremony under way. Root v2 is in the
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

// TestReleaseCLIPublishVerifiesHistory: publish writes only what it verified. Every staged key
// epoch is published, and with -all every older release, so each is verified first, against
// the staged root of its time; one that verifies under no staged root, or does not match its
// key or files, refuses the whole publication.
func TestReleaseCLIPublishVerifiesHistory(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	mustRelease(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "2", "-artifacts", k("artifacts"),
		"-release-key", k("release.key"), "-timestamp-key", k("ts.key"))
	signKeyEpoch(t, dir, stage, "1", "trustee")
	signKeyEpoch(t, dir, stage, "2", "trustee")
	// A second stage rotated to root v2 (new release and timestamp keys): releases 1 and 2 and
	// the key epochs are history signed under root v1, release 3 is signed under v2.
	rotated := k("rotated")
	copyDir(t, stage, rotated)
	for _, n := range []string{"root2", "release2", "ts2"} {
		mustRelease(t, "keygen", "-unencrypted", "-out", k(n))
	}
	if out, err := signRoot(t, dir, rotated, "2", "root2", "release2", "ts2", "root", "root2"); err != nil {
		t.Fatalf("root v2: %v\n%s", err, out)
	}
	mustRelease(t, "sign", "release", "-stage", rotated, "-model", "vigil-ae", "-version", "3", "-artifacts", k("artifacts"),
		"-release-key", k("release2.key"), "-timestamp-key", k("ts2.key"))

	resignFile := func(path, key string) { os.WriteFile(path, resign(t, readFile(t, path), k(key+".key")), 0o644) }
	n := 0
	for _, tc := range []struct {
		name   string
		from   string
		all    bool
		damage func(s string)
		bad    string // the file publish must name; "" if it publishes
		want   string
	}{
		{"as signed", stage, true, nil, "", "root version 1, key epoch 1, key epoch 2, vigil-ae version 1, vigil-ae version 2"},
		{"older key epoch signed by the release key", stage, false, func(s string) {
			resignFile(filepath.Join(s, release.KeyEpochKey(1)), "release")
		}, release.KeyEpochKey(1), ""},
		{"older key epoch under another epoch's key", stage, false, func(s string) {
			copyFile(t, filepath.Join(s, release.KeyEpochKey(2)), filepath.Join(s, release.KeyEpochKey(1)))
		}, release.KeyEpochKey(1), ""},
		{"older collective key damaged", stage, false, func(s string) {
			os.WriteFile(filepath.Join(s, release.CollectiveKeyKey(1)), []byte("damaged"), 0o644)
		}, release.CollectiveKeyKey(1), ""},
		{"older manifest's signature flipped", stage, true, func(s string) {
			flipSignature(t, filepath.Join(s, release.ManifestKey("vigil-ae", 1)))
		}, release.ManifestKey("vigil-ae", 1), ""},
		{"older manifest's signature flipped, without -all", stage, false, func(s string) {
			flipSignature(t, filepath.Join(s, release.ManifestKey("vigil-ae", 1)))
		}, "", "root version 1, key epoch 1, key epoch 2, vigil-ae version 2"},
		{"older manifest signed by the timestamp key", stage, true, func(s string) {
			resignFile(filepath.Join(s, release.ManifestKey("vigil-ae", 1)), "ts")
		}, release.ManifestKey("vigil-ae", 1), ""},
		{"older artifact damaged", stage, true, func(s string) {
			os.WriteFile(filepath.Join(s, release.ArtifactKey("vigil-ae", 1, "model.bin")), []byte("damaged"), 0o644)
		}, release.ArtifactKey("vigil-ae", 1, "model.bin"), ""},
		{"rotated: history under root v1", rotated, true, nil, "",
			"root version 1, root version 2, key epoch 1, key epoch 2, vigil-ae version 1, vigil-ae version 2, vigil-ae version 3"},
		{"rotated: older manifest signed by no staged root's release key", rotated, true, func(s string) {
			resignFile(filepath.Join(s, release.ManifestKey("vigil-ae", 1)), "ts2")
		}, release.ManifestKey("vigil-ae", 1), ""},
	} {
		n++
		s := k("case-" + string(rune('a'+n)))
		copyDir(t, tc.from, s)
		if tc.damage != nil {
			tc.damage(s)
		}
		dest := k("region-" + string(rune('a'+n)))
		args := []string{"publish", "-from", s, "-to", dest}
		if tc.all {
			args = append(args, "-all")
		}
		out, err := release_(t, args...)
		t.Logf("%s: %v\n%s", tc.name, err, out)
		if tc.bad == "" {
			if err != nil || !strings.Contains(out, dest+": published and verified: "+tc.want) {
				t.Errorf("%s: %v\n%s", tc.name, err, out)
			}
			continue
		}
		if exitCode(err) != exitRefused || !strings.Contains(err.Error(), tc.bad+": ") {
			t.Errorf("%s: publish did not refuse naming %s: %v (exit %d)\n%s", tc.name, tc.bad, err, exitCode(err), out)
		}
		if _, err := os.Stat(dest); err == nil {
			t.Errorf("%s: publish wrote to the region", tc.name)
		}
	}
}

// TestReleaseCLIRefusesExpiriesAndVersions: an expiry in the past
// given as an RFC 3339 time, and a pointer lifetime devices refuse, are usage errors naming the
// flag, found before anything is signed; `sign latest -version` below the staged pointer is
// refused (it used to print success and write nothing). The stage is left as it was.
func TestReleaseCLIRefusesExpiriesAndVersions(t *testing.T) {
	dir, stage := operatorSetup(t)
	k := func(n string) string { return filepath.Join(dir, n) }
	mustRelease(t, "sign", "release", "-stage", stage, "-model", "vigil-ae", "-version", "2", "-artifacts", k("artifacts"),
		"-release-key", k("release.key"), "-timestamp-key", k("ts.key"))
	os.WriteFile(k("ck1.bin"), []byte("collective public key"), 0o644)
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	tooFar := time.Now().Add(release.MaxPointerLifetime + time.Hour).UTC().Format(time.RFC3339)
	// Each case runs in a copy of the stage ("STAGE" in its arguments), so that one wrongly
	// accepted does not change what the next sees.
	const S = "STAGE"
	latest := func(extra ...string) []string {
		return append([]string{"sign", "latest", "-stage", S, "-model", "vigil-ae", "-timestamp-key", k("ts.key")}, extra...)
	}
	signRelease := func(extra ...string) []string {
		return append([]string{"sign", "release", "-stage", S, "-model", "vigil-ae", "-version", "3", "-artifacts", k("artifacts"),
			"-release-key", k("release.key"), "-timestamp-key", k("ts.key")}, extra...)
	}
	for i, tc := range []struct {
		name string
		args []string
		code int
		want string
		is   error
	}{
		{"sign latest below the staged pointer", latest("-version", "1"), exitRefused, "flag -version", release.ErrRollback},
		{"sign latest in the past", latest("-expires", past), exitUsage, "flag -expires", nil},
		{"sign latest too far ahead", latest("-expires", "200h"), exitUsage, "flag -expires", release.ErrLifetime},
		{"sign latest too far ahead, as a time", latest("-expires", tooFar), exitUsage, "flag -expires", release.ErrLifetime},
		{"sign release in the past", signRelease("-expires", past), exitUsage, "flag -expires", nil},
		{"sign release pointer in the past", signRelease("-latest-expires", past), exitUsage, "flag -latest-expires", nil},
		{"sign release pointer too far ahead", signRelease("-latest-expires", "200h"), exitUsage, "flag -latest-expires", release.ErrLifetime},
		{"sign keyepoch in the past", []string{"sign", "keyepoch", "-stage", S, "-epoch", "1", "-params", "p1",
			"-public-key", k("ck1.bin"), "-key", k("trustee.key"), "-expires", past}, exitUsage, "flag -expires", nil},
		{"sign root in the past", []string{"sign", "root", "-stage", S, "-version", "2", "-expires", "2020-01-01T00:00:00Z",
			"-root", k("root.pub"), "-release", k("release.pub"), "-timestamp", k("ts.pub"), "-trustees", k("trustee.pub"), "-trustees-threshold", "1",
			"-enrolment", k("enrol.pub"), "-privacy", k("privacy.pub"), "-key", k("root.key"), "-partial"}, exitUsage, "flag -expires", nil},
	} {
		s := k("case-" + string(rune('a'+i)))
		copyDir(t, stage, s)
		args := slices.Clone(tc.args)
		args[slices.Index(args, S)] = s
		before := stageListing(t, s)
		out, err := release_(t, args...)
		t.Logf("%s: %v", tc.name, err)
		if exitCode(err) != tc.code || err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v (exit %d), want exit %d naming %q\n%s", tc.name, err, exitCode(err), tc.code, tc.want, out)
		}
		if after := stageListing(t, s); strings.ReplaceAll(after, s, "") != strings.ReplaceAll(before, s, "") {
			t.Errorf("%s: the stage changed", tc.name)
		}
	}
	// Still accepted: the staged pointer's own version, an RFC 3339 time ahead.
	soon := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	args := latest("-version", "2", "-expires", soon)
	args[slices.Index(args, S)] = stage
	if out := mustRelease(t, args...); !strings.Contains(out, "pointer to vigil-ae version 2, expires "+soon) {
		t.Fatalf("sign latest -version 2:\n%s", out)
	}
}
