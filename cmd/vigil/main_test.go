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
	"testing"
	"time"
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

// TestSeparateProcesses runs the coordinator and three clients as separate OS processes talking
// gRPC over loopback, scrapes the coordinator's /metrics mid-run, and checks the stored versions.
func TestSeparateProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	coord := vigilCmd(ctx, "coordinator", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--dir", dir, "--rounds", "2", "--devices-per-round", "3", "--min-updates", "3", "--insecure-plaintext", "--log-level", "warn")
	out, err := coord.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var coordErr bytes.Buffer
	coord.Stderr = &coordErr
	if err := coord.Start(); err != nil {
		t.Fatal(err)
	}
	lines := watch(t, out)
	addr := lines.wait(t, "coordinator listening on ")
	metricsURL := lines.wait(t, "metrics on ")

	var clients []*exec.Cmd
	var firstOut *lineWaiter
	for i := 1; i <= 3; i++ {
		c := vigilCmd(ctx, "client", "--coordinator", addr, "--device-id", fmt.Sprintf("proc-%d", i),
			"--synthetic-seed", fmt.Sprint(i), "--rounds", "2", "--insecure-plaintext", "--log-level", "warn")
		cout, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		w := watch(t, cout)
		if i == 1 {
			firstOut = w
		} else {
			go func() {
				for range w.lines {
				}
			}()
		}
		clients = append(clients, c)
	}
	firstOut.wait(t, "submitted round 1")
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
	go func() {
		for range firstOut.lines {
		}
	}()
	for i, c := range clients {
		if err := c.Wait(); err != nil {
			t.Fatalf("client %d: %v", i+1, err)
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
		{[]string{"coordinator"}, "--insecure-plaintext"},
		{[]string{"client", "--insecure-plaintext"}, "--device-id is required"},
		{[]string{"client", "--device-id", "a", "--insecure-plaintext"}, "exactly one of --synthetic-seed"},
		{[]string{"client", "--device-id", "a b", "--synthetic-seed", "1", "--insecure-plaintext"}, `--device-id "a b"`},
		{[]string{"client", "--device-id", "a", "--aalto-file", "/nope.gz", "--insecure-plaintext"}, "--aalto-file"},
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
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"demo", "--devices", "4", "--rounds", "3", "--noise-multiplier", "0", "--dir", t.TempDir()}, &stdout, &stderr); err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "held-out loss") || strings.Count(stderr.String(), "held-out loss") != 3 {
		t.Fatalf("demo output lacks the per-round lines or the summary:\n%s\n%s", out, stderr.String())
	}
}
