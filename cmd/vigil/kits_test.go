package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

var kitTrusteeIDs = []string{"privacy-office", "security", "audit"}

// setupKits returns an organisation directory and its kits from `vigil setup --kits`.
func setupKits(t *testing.T) (org, kits string) {
	t.Helper()
	dir := t.TempDir()
	org, kits = filepath.Join(dir, "org"), filepath.Join(dir, "kits")
	if err := run(context.Background(), []string{"setup", "--dir", org, "--kits", kits}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	return org, kits
}

// copyKit copies the kits to a directory of the test's own.
func copyKit(t *testing.T, kits string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "kits")
	if err := copyAll(dir, kits, map[string]string{".": "."}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// setConfig replaces the lines of key in a kit's config file by one line per value.
func setConfig(t *testing.T, path, key string, values ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + ` = .*\n`)
	data = re.ReplaceAll(data, nil)
	for _, v := range values {
		data = append(data, key+" = "+v+"\n"...)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKitsHoldOnlyTheirSecrets walks every kit and compares each file's contents with every
// secret of the organisation: a kit must hold all of its own site's secrets and none of
// another's. Every 0600 file of the organisation must be someone's secret, so that a secret
// added to `vigil setup` later cannot slip into a kit unclassified.
func TestKitsHoldOnlyTheirSecrets(t *testing.T) {
	org, kits := setupKits(t)
	secrets := map[string][]string{ // kit -> its secrets, as organisation paths
		kitCoordinator:   {"pki/ca-key.pem", "pki/coordinator/key.pem", "keys/release.key", "keys/timestamp.key"},
		kitEnrol:         {"enrol/enrolment.key", "enrol/ca-key.pem", "enrol/tls/key.pem"},
		kitPrivacyOffice: {"privacy/privacy.key"},
		kitRootOffline:   {"keys/root.key"},
	}
	for _, id := range kitTrusteeIDs {
		secrets[filepath.Join(kitTrustees, id)] = []string{"trustees/" + id + "/share.key", "trustees/" + id + "/identity.key", "trustees/" + id + "/tls/key.pem"}
	}
	owner := map[string]string{} // secret contents -> "kit: org path"
	classified := map[string]bool{}
	for kit, files := range secrets {
		for _, f := range files {
			data, err := os.ReadFile(filepath.Join(org, f))
			if err != nil {
				t.Fatal(err)
			}
			owner[string(data)] = kit + ": " + f
			classified[f] = true
		}
	}
	filepath.WalkDir(org, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, _ := d.Info()
		rel, _ := filepath.Rel(org, path)
		if info.Mode().Perm() == 0o600 && !classified[rel] {
			t.Errorf("organisation file %s is a secret (mode 0600) that no kit is said to own", rel)
		}
		return nil
	})
	for kit, own := range secrets {
		held := map[string]bool{}
		err := filepath.WalkDir(filepath.Join(kits, kit), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if o, ok := owner[string(data)]; ok {
				if !strings.HasPrefix(o, kit+": ") {
					t.Errorf("kit %s holds %s, a secret of %s", kit, path, o)
				}
				held[o] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range own {
			if !held[kit+": "+f] {
				t.Errorf("kit %s lacks its secret %s", kit, f)
			}
		}
	}
}

// TestPreflight checks fresh kits pass `vigil preflight` and that broken ones fail with a
// message naming the file and the fault.
func TestPreflight(t *testing.T) {
	_, kits := setupKits(t)
	other, _ := setupKits(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	trusteeKit := filepath.Join(kitTrustees, "security")
	for _, tc := range []struct {
		name    string
		kit     string
		breakIt func(t *testing.T, kit string)
		later   time.Duration // how far after now to check
		want    string        // "" for a kit that passes
	}{
		{name: "fresh coordinator", kit: kitCoordinator},
		{name: "fresh trustee", kit: trusteeKit},
		{name: "fresh enrol", kit: kitEnrol},
		{name: "fresh privacy office", kit: kitPrivacyOffice},
		{name: "fresh offline root", kit: kitRootOffline},
		{name: "missing share", kit: trusteeKit, want: "share.key: missing",
			breakIt: func(t *testing.T, kit string) { os.Remove(filepath.Join(kit, "share.key")) }},
		{name: "secret mode 0644", kit: kitCoordinator, want: "org/keys/release.key: mode 0644, a secret must be 0600",
			breakIt: func(t *testing.T, kit string) { os.Chmod(filepath.Join(kit, "org/keys/release.key"), 0o644) }},
		{name: "other organisation's root", kit: trusteeKit, want: "identity.key: key ", // ... is not in the trustees role
			breakIt: func(t *testing.T, kit string) {
				data, _ := os.ReadFile(filepath.Join(other, "root.json"))
				os.WriteFile(filepath.Join(kit, "root.json"), data, 0o644)
			}},
		{name: "other organisation's root, coordinator", kit: kitCoordinator, want: "is not in the release role",
			breakIt: func(t *testing.T, kit string) {
				data, _ := os.ReadFile(filepath.Join(other, "root.json"))
				os.WriteFile(filepath.Join(kit, "org", "root.json"), data, 0o644)
			}},
		{name: "corrupt root", kit: kitEnrol, want: "root.json: ",
			breakIt: func(t *testing.T, kit string) { os.WriteFile(filepath.Join(kit, "root.json"), []byte("{}"), 0o644) }},
		{name: "certificate expiring", kit: trusteeKit, later: 350 * 24 * time.Hour, want: "tls/cert.pem: certificate \"security\" expires"},
		{name: "config cut short", kit: kitCoordinator, want: `coordinator.conf: no "listen" setting`,
			breakIt: func(t *testing.T, kit string) {
				path := filepath.Join(kit, "coordinator.conf")
				data, _ := os.ReadFile(path)
				i := bytes.Index(data, []byte("org ="))
				os.WriteFile(path, data[:i+len("org = org\n")], 0o644)
			}},
		{name: "another trustee's share", kit: trusteeKit, want: `share.key: the share is trustee "audit"'s, but the kit's certificate names spiffe://vigil/trustee/security`,
			breakIt: func(t *testing.T, kit string) {
				data, _ := os.ReadFile(filepath.Join(kits, kitTrustees, "audit", "share.key"))
				os.WriteFile(filepath.Join(kit, "share.key"), data, 0o600)
			}},
		{name: "listen address taken", kit: kitEnrol, want: "enrol.conf: listen = " + busy.Addr().String() + ": the address is not free",
			breakIt: func(t *testing.T, kit string) {
				setConfig(t, filepath.Join(kit, "enrol.conf"), "listen", busy.Addr().String())
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kit := filepath.Join(copyKit(t, kits), tc.kit)
			for _, role := range []string{"coordinator", "trustee", "enrol"} {
				// Port 0 is always free: the fixed ports of a fresh kit may be taken on a test host.
				if _, err := os.Stat(filepath.Join(kit, kitConfigFile(role))); err == nil {
					setConfig(t, filepath.Join(kit, kitConfigFile(role)), "listen", "127.0.0.1:0")
				}
			}
			if tc.breakIt != nil {
				tc.breakIt(t, kit)
			}
			var err error
			if tc.later == 0 {
				err = run(context.Background(), []string{"preflight", "--kit", kit}, io.Discard, io.Discard)
			} else {
				_, problems, perr := preflight(kit, time.Now().Add(tc.later))
				if err = perr; err == nil && len(problems) > 0 {
					err = fmt.Errorf("%s", strings.Join(problems, "\n"))
				}
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("preflight of a fresh kit: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("preflight = %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// startInKit runs vigil with args in the kit directory, as start.sh does, and returns its
// output lines.
func startInKit(t *testing.T, ctx context.Context, kit string, args ...string) (*exec.Cmd, *lineWaiter, *bytes.Buffer) {
	t.Helper()
	c := vigilCmd(ctx, args...)
	c.Dir = kit
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c, watch(t, out), &stderr
}

// TestKitsStart starts the enrolment authority, the trustees and the coordinator from their
// kits with only the kits' config files (and port 0 instead of the fixed ports), then runs one
// encrypted round with two devices: the kits hold everything each site needs.
func TestKitsStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, kits := setupKits(t)
	drain := func(w *lineWaiter) {
		go func() {
			for range w.lines {
			}
		}()
	}
	enrolKit := filepath.Join(kits, kitEnrol)
	_, lines, _ := startInKit(t, ctx, enrolKit, "enrol", "serve", "--config", "enrol.conf", "--listen", "127.0.0.1:0", "--log-level", "warn")
	enrolAddr := strings.Fields(lines.wait(t, "enrolment authority listening on "))[0]
	drain(lines)
	// The first trustee starts as an operator would, with the kit's start.sh: preflight, then
	// the server, with `vigil` on the PATH (this test binary, which runs main when told to).
	bin := t.TempDir()
	if err := os.Symlink(os.Args[0], filepath.Join(bin, "vigil")); err != nil {
		t.Fatal(err)
	}
	var trustees []string
	for i, id := range kitTrusteeIDs {
		kit := filepath.Join(kits, kitTrustees, id)
		setConfig(t, filepath.Join(kit, "trustee.conf"), "listen", "127.0.0.1:0") // the fixed ports may be taken on a test host
		var lines *lineWaiter
		if i == 0 {
			c := exec.CommandContext(ctx, "sh", "./"+kitStart, "--log-level", "warn")
			c.Dir, c.Env = kit, append(os.Environ(), "VIGIL_TEST_AS_MAIN=1", "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := c.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Process.Kill(); c.Wait() })
			lines = watch(t, out)
			lines.wait(t, "preflight: trustee kit . is ready")
		} else {
			_, lines, _ = startInKit(t, ctx, kit, "trustee", "serve", "--config", "trustee.conf", "--log-level", "warn")
		}
		line := lines.wait(t, "trustee "+id)
		trustees = append(trustees, id+"="+line[strings.LastIndex(line, " ")+1:])
		drain(lines)
	}
	coordKit := filepath.Join(kits, kitCoordinator)
	setConfig(t, filepath.Join(coordKit, "coordinator.conf"), "trustee", trustees...)
	region := t.TempDir()
	coord, lines, coordErr := startInKit(t, ctx, coordKit, "coordinator", "--config", "coordinator.conf", "--listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--rounds", "1", "--devices-per-round", "2",
		"--region", "eu="+region, "--log-level", "warn")
	addr := lines.wait(t, "coordinator listening on ")
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("kit-%d", i)
		var tok bytes.Buffer
		if err := run(ctx, []string{"enrol", "token", "--dir", enrolKit, "--device-id", id}, &tok, io.Discard); err != nil {
			t.Fatal(err)
		}
		_, out, _ := startProcess(t, ctx, "client", "--coordinator", addr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", filepath.Join(coordKit, "org", "root.json"), "--region-store", region, "--poll", "100ms", "--synthetic-seed", fmt.Sprint(i),
			"--log-level", "error", "--enrol", enrolAddr, "--enrol-ca", filepath.Join(enrolKit, "ca.pem"), "--token", strings.TrimSpace(tok.String()),
			"--region", "eu", "--ca", filepath.Join(coordKit, "org", "pki", "ca.pem"))
		drain(out)
	}
	summary := lines.wait(t, "stopped after ")
	if err := coord.Wait(); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, coordErr.String())
	}
	if !strings.HasPrefix(summary, "1 rounds") {
		t.Fatalf("coordinator summary %q\n%s", summary, coordErr.String())
	}
	t.Logf("coordinator from its kit: %s", summary)
}

// TestSetupRefusedWritesNothing: a value setup refuses only once it has begun (a policy
// floor, a trustee ID, where the kits go) leaves nothing behind, so the same command with
// the value corrected then succeeds. Before, keys were left in --dir, and setup refused to
// write the organisation again.
func TestSetupRefusedWritesNothing(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir, kits := filepath.Join(base, "org"), filepath.Join(base, "kits")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--policy-min-noise", "NaN"}, "min_noise_multiplier"},
		{[]string{"--policy-max-clip", "-1"}, "clip"},
		{[]string{"--trustees", "a,a"}, `"a" appears twice`},
		{[]string{"--kits", file}, "--kits"},
	} {
		err := run(context.Background(), append([]string{"setup", "--dir", dir}, tc.args...), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("setup %v: %v, want a refusal mentioning %q", tc.args, err, tc.want)
		}
		if entries, _ := os.ReadDir(base); len(entries) != 1 {
			t.Fatalf("setup %v left %d entries beside the file", tc.args, len(entries)-1)
		}
	}
	if err := run(context.Background(), []string{"setup", "--dir", dir, "--kits", dir}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "--kits "+dir+" is --dir") {
		t.Errorf("setup with --kits the same as --dir: %v", err)
	}
	// An empty --dir is taken, and so is one holding only what an interrupted setup left.
	if err := os.MkdirAll(filepath.Join(dir, ".setup-1234"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"setup", "--dir", dir, "--kits", kits}, io.Discard, io.Discard); err != nil {
		t.Fatalf("setup after the refusals: %v", err)
	}
	for _, d := range []string{filepath.Join(dir, "root.json"), filepath.Join(kits, kitCoordinator)} {
		if _, err := os.Stat(d); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".setup-1234")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("an interrupted setup's leftovers are still in --dir: %v", err)
	}
	// Kits inside the organisation's directory, refused late, then written.
	nested := filepath.Join(base, "nested")
	if err := run(context.Background(), []string{"setup", "--dir", nested, "--kits", filepath.Join(nested, "kits"), "--policy-min-noise", "NaN"}, io.Discard, io.Discard); err == nil {
		t.Fatal("setup with --policy-min-noise NaN succeeded")
	}
	if _, err := os.Stat(nested); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused setup left %s: %v", nested, err)
	}
	if err := run(context.Background(), []string{"setup", "--dir", nested, "--kits", filepath.Join(nested, "kits")}, io.Discard, io.Discard); err != nil {
		t.Fatalf("setup with its kits inside --dir: %v", err)
	}
	if entries, _ := os.ReadDir(nested); len(entries) < 5 || slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return strings.HasPrefix(e.Name(), ".setup-") }) {
		t.Fatalf("%s holds %v", nested, entries)
	}
}
