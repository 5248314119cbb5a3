package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilauth/vigil/sim"
)

// TestMain lets tests run this test binary as the vigil command in a child process.
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// vigilCmd returns a command running `vigil args...` in a child process.
func vigilCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "VIGIL_TEST_AS_MAIN=1")
	return cmd
}

// lineWaiter collects a child's output lines and waits for one with a prefix.
type lineWaiter struct {
	lines chan string
	all   bytes.Buffer
}

func watch(t *testing.T, r io.Reader) *lineWaiter {
	w := &lineWaiter{lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
		close(w.lines)
	}()
	return w
}

func (w *lineWaiter) wait(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-w.lines:
			if !ok {
				t.Fatalf("output ended before a line starting %q; got:\n%s", prefix, w.all.String())
			}
			w.all.WriteString(l + "\n")
			if strings.HasPrefix(l, prefix) {
				return strings.TrimPrefix(l, prefix)
			}
		case <-timeout:
			t.Fatalf("no line starting %q within 60s; got:\n%s", prefix, w.all.String())
		}
	}
}

// org creates an organisation with `vigil setup` and returns its directory.
func org(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "org")
	if err := run(context.Background(), []string{"setup", "--dir", dir}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	return dir
}

// token issues a one-time enrolment token for device with `vigil enrol token`.
func token(t *testing.T, orgDir, device string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"enrol", "token", "--dir", filepath.Join(orgDir, "enrol"), "--device-id", device}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// enrolFlags are the flags with which `vigil client` device registers with the enrolment
// authority at addr and enrols with the coordinator, region eu.
func enrolFlags(t *testing.T, orgDir, addr, device string) []string {
	return []string{"--enrol", addr, "--enrol-ca", filepath.Join(orgDir, "enrol", "ca.pem"), "--token", token(t, orgDir, device),
		"--region", "eu", "--ca", filepath.Join(orgDir, "pki", "ca.pem")}
}

// startProcess starts `vigil args...` and returns it with its stdout lines.
func startProcess(t *testing.T, ctx context.Context, args ...string) (*exec.Cmd, *lineWaiter, *syncBuffer) {
	t.Helper()
	c := vigilCmd(ctx, args...)
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := new(syncBuffer)
	c.Stderr = stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c, watch(t, out), stderr
}

// startAuthority runs the organisation's enrolment authority as its own process and returns
// its address.
func startAuthority(t *testing.T, ctx context.Context, orgDir string) string {
	t.Helper()
	_, lines, _ := startProcess(t, ctx, "enrol", "serve", "--dir", filepath.Join(orgDir, "enrol"), "--listen", "127.0.0.1:0", "--log-level", "warn")
	addr := strings.Fields(lines.wait(t, "enrolment authority listening on "))[0]
	go func() {
		for range lines.lines {
		}
	}()
	return addr
}

// startTrustees runs every trustee of the organisation as its own process, over mutual TLS, and
// returns the --trustee flags that reach them.
func startTrustees(t *testing.T, ctx context.Context, orgDir string, minContributors int) []string {
	t.Helper()
	var flags []string
	for _, id := range []string{"privacy-office", "security", "audit"} {
		dir := filepath.Join(orgDir, "trustees", id)
		_, lines, _ := startProcess(t, ctx, "trustee", "serve", "--dir", dir, "--pki-dir", filepath.Join(dir, "tls"), "--root", filepath.Join(orgDir, "root.json"),
			"--min-contributors", fmt.Sprint(minContributors), "--listen", "127.0.0.1:0", "--log-level", "warn")
		line := lines.wait(t, "trustee "+id)
		addr := line[strings.LastIndex(line, " ")+1:]
		flags = append(flags, "--trustee", id+"="+addr)
		go func() {
			for range lines.lines {
			}
		}()
	}
	return flags
}

// TestSeparateProcesses runs every role as its own OS process over TLS on loopback: the
// enrolment authority, three trustees, the coordinator, and three devices that register with
// the authority using one-time tokens, enrol with the coordinator presenting their device
// records, send signed encrypted updates, and install the signed releases from their region's
// store. It scrapes the
// coordinator's /metrics mid-run, then verifies the published release with `vigil release verify`.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	orgDir, dir, region := org(t), t.TempDir(), t.TempDir()
	args := []string{"coordinator", "--org", orgDir, "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--region", "eu=" + region, "--rounds", "2", "--devices-per-round", "3", "--min-updates", "3", "--log-level", "warn"}
	enrolAddr := startAuthority(t, ctx, orgDir)
	coord, lines, coordErr := startProcess(t, ctx, append(args, startTrustees(t, ctx, orgDir, 3)...)...)
	addr := lines.wait(t, "coordinator listening on ")
	metricsURL := lines.wait(t, "metrics on ")

	var clients []*exec.Cmd
	var outs []*lineWaiter
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("proc-%d", i)
		args := append([]string{"client", "--coordinator", addr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", filepath.Join(orgDir, "root.json"), "--region-store", region, "--poll", "100ms", "--synthetic-seed", fmt.Sprint(i),
			"--log-level", "error"}, enrolFlags(t, orgDir, enrolAddr, id)...)
		c, out, _ := startProcess(t, ctx, args...)
		clients = append(clients, c)
		outs = append(outs, out)
	}
	outs[0].wait(t, "enrolled as proc-1")
	outs[0].wait(t, "submitted round 1")
	resp, err := http.Get(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`vigil_enrolled_devices 3`, `vigil_updates_total{reason="",result="accepted"}`, `vigil_round_duration_seconds_bucket`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	// The devices run until stopped; the first one must install v1 and stage the release of
	// round 2 (v3) from its region store.
	outs[0].wait(t, "release v3 staged")
	if !strings.Contains(outs[0].all.String(), "release v1 installed") {
		t.Fatalf("the device did not install the first release:\n%s", outs[0].all.String())
	}
	for i, c := range clients {
		go func() {
			for range outs[i].lines {
			}
		}()
		c.Process.Signal(syscall.SIGTERM)
		if err := c.Wait(); err != nil {
			t.Fatalf("client %d did not stop cleanly: %v", i+1, err)
		}
	}
	summary := lines.wait(t, "stopped after ")
	if err := coord.Wait(); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, coordErr.String())
	}
	if !strings.HasPrefix(summary, "2 rounds; global model v3") {
		t.Fatalf("coordinator summary %q", summary)
	}
	for v := 1; v <= 3; v++ {
		if _, err := os.Stat(filepath.Join(dir, "store", "models", "keystroke-ae", fmt.Sprintf("v%010d", v), "meta.json")); err != nil {
			t.Errorf("version %d not stored: %v", v, err)
		}
	}
	var verified bytes.Buffer
	if err := run(ctx, []string{"release", "verify", "--root", filepath.Join(orgDir, "root.json"), "--model", "keystroke-ae", region}, &verified, io.Discard); err != nil {
		t.Fatalf("vigil release verify of the region store: %v\n%s", err, verified.String())
	}
}

func TestCommandErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"demo", "--devices", "0"}, "--devices 0"},
		{[]string{"demo", "--rounds", "x"}, `invalid value "x" for flag -rounds`},
		{[]string{"demo", "--aalto", "/does/not/exist"}, "--aalto /does/not/exist"},
		{[]string{"coordinator"}, "--org is required"},
		{[]string{"coordinator", "--org", "/nope"}, "--trustee"},
		{[]string{"coordinator", "--org", "/nope", "--insecure-plaintext"}, "--org"},
		{[]string{"coordinator", "--org", "/nope", "--insecure-plaintext", "--clip", "0"}, "--clip 0"},
		{[]string{"coordinator", "--org", "/nope", "--insecure-plaintext", "--delta", "0.5"}, "--delta 0.5"},
		{[]string{"coordinator", "--org", "/nope", "--insecure-plaintext", "--min-updates", "-3"}, "--min-updates -3"},
		{[]string{"coordinator", "--org", "/nope", "--insecure-plaintext", "--min-updates", "11"}, "--min-updates 11"},
		{[]string{"coordinator", "--org", "/nope", "--insecure-plaintext", "--tier-blobs", "/tmp/b"}, "--tier-blobs needs --nats"},
		{[]string{"coordinator", "--org", "/nope", "--insecure-plaintext", "--nats", "embedded", "--tier-blobs", "ftp://x/y"}, "ftp://x/y: only directories and s3:// locations"},
		{[]string{"client", "--insecure-plaintext"}, "--device-id is required"},
		{[]string{"client", "--device-id", "a", "--insecure-plaintext"}, "exactly one of --synthetic-seed"},
		{[]string{"client", "--device-id", "a", "--synthetic-seed", "1"}, "--root is required"},
		{[]string{"client", "--device-id", "a b", "--synthetic-seed", "1", "--insecure-plaintext"}, `--device-id "a b"`},
		{[]string{"client", "--device-id", "a", "--aalto-file", "/nope.gz", "--insecure-plaintext"}, "--aalto-file"},
		{[]string{"client", "--device-id", "a", "--synthetic-seed", "1", "--insecure-plaintext", "--dir", "/nonexistent/x"}, "enrol with --enrol, --enrol-ca, --token, --region and --ca"},
		{[]string{"client", "--device-id", "a", "--synthetic-seed", "1", "--insecure-plaintext", "--dir", "/nonexistent/x", "--ca", "/nope.pem"}, "--ca"},
		{[]string{"enrol"}, "enrol: no command given"},
		{[]string{"enrol", "serve", "--dir", "/nonexistent/enrol"}, "vigil enrol init"},
		{[]string{"pki", "token", "--dir", "/nonexistent"}, `unknown command "token"`},
		{[]string{"setup"}, "--dir is required"},
		{[]string{"setup", "org"}, "did you mean --dir org?"},
		{[]string{"loadtest", "--tier", "true"}, "--flag=true"},
		{[]string{"loadtest", "--frontend-cpu", "0.5"}, "give --frontends too"},
		{[]string{"loadtest", "--frontends", "2", "--frontend-cpu", "-1"}, "--frontend-cpu -1 out of range"},
		{[]string{"loadtest", "--frontends", "2", "--frontend-cpu", "0.001"}, "--frontend-cpu 0.001 out of range"},
		{[]string{"trustee", "serve", "trustees/audit"}, "did you mean --dir trustees/audit?"},
		{[]string{"audit", "verify", "--log", "x", "--key", "y", "extra"}, `unexpected argument "extra"`},
	} {
		var stderr bytes.Buffer
		err := run(ctx, tc.args, io.Discard, &stderr)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if !strings.Contains(msg+stderr.String(), tc.want) {
			t.Errorf("vigil %v: error %q, stderr %q; want mention of %q", tc.args, msg, stderr.String(), tc.want)
		}
	}
}

func TestDemo(t *testing.T) {
	// The demo's coordinator logs to stderr while its progress bar writes there too, from
	// another goroutine (a plain bytes.Buffer raced, found by the race detector).
	for _, tier := range []string{"off", "embedded"} {
		t.Run("--nats "+tier, func(t *testing.T) {
			var stdout, stderr syncBuffer
			// More devices than the coordinator admits without certificates from one address by
			// default: the demo's whole fleet enrols from 127.0.0.1 at once.
			args := []string{"demo", "--devices", "12", "--rounds", "3", "--insecure-no-dp", "--nats", tier, "--dir", t.TempDir()}
			if err := run(context.Background(), args, &stdout, &stderr); err != nil {
				t.Fatalf("demo: %v\n%s", err, stderr.String())
			}
			out := stdout.String()
			if !strings.Contains(out, "held-out loss") || strings.Count(stderr.String(), "held-out loss") != 3 {
				t.Fatalf("demo output lacks the per-round lines or the summary:\n%s\n%s", out, stderr.String())
			}
		})
	}
}

// TestDemoPublishesEveryPopulation runs the demo with the mouse population's rounds, whose
// model the demo once had no outbox for: it was never published, and the coordinator logged
// "no publisher" after every round.
func TestDemoPublishesEveryPopulation(t *testing.T) {
	var stdout, stderr syncBuffer
	dir := t.TempDir()
	// Every device in every round: with a quarter sampled, a round of 12 devices fails to start
	// one time in six, and takes a number of its own.
	args := []string{"demo", "--devices", "12", "--devices-per-round", "12", "--rounds", "1", "--insecure-no-dp", "--mouse-population-noise", "1", "--dir", dir}
	if err := run(context.Background(), args, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	if strings.Contains(stderr.String(), "no publisher") {
		t.Errorf("a release found no publisher:\n%s", stderr.String())
	}
	// One round per population, one more for the mouse reference, then the training round.
	if !strings.Contains(stderr.String(), "round 4/4 ") || strings.Contains(stderr.String(), "round 5") {
		t.Errorf("progress does not count 4 rounds:\n%s", stderr.String())
	}
	for _, region := range []string{"eu", "us"} {
		for _, model := range []string{sim.AutoencoderModel, sim.PopulationModel, sim.MousePopulationModel} {
			if _, err := os.Stat(filepath.Join(sim.DemoRegionDir(dir, region), "releases", model)); err != nil {
				t.Errorf("region %s: %s not published: %v", region, model, err)
			}
		}
	}
}
