package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigilauth/vigil/agent"
)

// TestAgentSIEMExport runs the agent with the exporter the --siem-* flags build: a session
// opened, a transfer decided and the session closed reach the spool, and `vigil siem send`
// delivers them from that spool to a local HTTPS collector as valid OCSF.
func TestAgentSIEMExport(t *testing.T) {
	dir := t.TempDir()
	srv, caFile, got := testHEC(t, "tok")
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok"), 0o600)
	spool := filepath.Join(dir, "spool")

	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	sf := addSIEMFlags(fs)
	// Port 1 refuses connections: the agent spools while its collector is unreachable.
	if err := fs.Parse([]string{"--siem-spool", spool, "--siem-hec", "https://127.0.0.1:1", "--siem-token-file", tokenFile,
		"--siem-service", "bank", "--siem-metrics", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	export, stop, err := sf.start(logger)
	if err != nil {
		t.Fatal(err)
	}
	metricsURL := regexp.MustCompile(`url=(http://\S+/metrics)`).FindStringSubmatch(logs.String())
	if metricsURL == nil {
		t.Fatalf("no metrics URL logged: %s", logs.String())
	}
	a, err := agent.New(agent.Config{Dir: filepath.Join(dir, "agent"), Export: export, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	g, now := a.Guard(), time.Now()
	if _, err := g.OpenSession("s1", "alice", now); err != nil {
		t.Fatal(err)
	}
	d := g.Authorize(context.Background(), "s1", "transfer")
	if err := g.CloseSession("s1", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(metricsURL[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`(?m)^vigil_siem_queued_total [1-9]`).Match(page) {
		t.Errorf("--siem-metrics page lacks a positive vigil_siem_queued_total:\n%s", page)
	}
	stop()

	var out bytes.Buffer
	if err := runSIEM(context.Background(), []string{"send", "--spool", spool, "--hec", srv.URL, "--token-file", tokenFile, "--ca", caFile}, &out, &out); err != nil {
		t.Fatalf("siem send: %v\n%s", err, out.String())
	}
	var kinds []string
	for _, ev := range got() {
		if ev.Unmapped.Vigil.Kind == "decision" && ev.Unmapped.Vigil.Outcome != d.Outcome.String() {
			t.Errorf("decision arrived with outcome %q, the guard decided %q", ev.Unmapped.Vigil.Outcome, d.Outcome)
		}
		kinds = append(kinds, ev.Unmapped.Vigil.Kind+":"+ev.Unmapped.Vigil.Event+ev.Unmapped.Vigil.Outcome)
	}
	all := strings.Join(kinds, " ")
	for _, want := range []string{"session:opened", "decision:" + d.Outcome.String(), "session:closed"} {
		if !strings.Contains(all, want) {
			t.Errorf("collector has %q, missing %s", all, want)
		}
	}
}

// TestAgentSIEMFlagErrors checks that the agent's --siem-* flags are refused naming the flag.
func TestAgentSIEMFlagErrors(t *testing.T) {
	tests := []struct {
		args  []string
		wants string
	}{
		{[]string{"--siem-hec", "https://h"}, "--siem-spool"},
		{[]string{"--siem-spool", t.TempDir()}, "--siem-hec, --siem-syslog"},
		{[]string{"--siem-spool", t.TempDir(), "--siem-hec", "https://h"}, "--siem-token-file"},
		{[]string{"--siem-spool", t.TempDir(), "--siem-syslog", "nohost"}, "--siem-syslog"},
		{[]string{"--siem-metrics", "127.0.0.1:0"}, "--siem-spool"},
		{[]string{"--siem-spool", t.TempDir(), "--siem-syslog", "h:6514", "--siem-client-key", "k.pem"}, "--siem-client-cert and --siem-client-key"},
		{[]string{"--siem-spool", t.TempDir(), "--siem-syslog", "h:6514", "--siem-metrics", "256.0.0.1:1"}, "--siem-metrics"},
	}
	for _, tc := range tests {
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		sf := addSIEMFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		_, stop, err := sf.start(slog.New(slog.DiscardHandler))
		stop()
		if err == nil || !strings.Contains(err.Error(), tc.wants) {
			t.Errorf("%v: %v, want an error naming %q", tc.args, err, tc.wants)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger on another goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAgentRestartLosesNothing records decisions on an agent whose collector is unreachable,
// stops the agent, starts it again on the same directories with the collector reachable, and
// checks that what the first run decided arrives, with what the second run decides.
func TestAgentRestartLosesNothing(t *testing.T) {
	dir := t.TempDir()
	srv, caFile, got := testHEC(t, "tok")
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok"), 0o600)
	spool, agentDir := filepath.Join(dir, "spool"), filepath.Join(dir, "agent")
	logger := slog.New(slog.DiscardHandler)
	delivered := func() map[string]int {
		count := map[string]int{}
		for _, ev := range got() {
			if ev.Unmapped.Vigil.Kind == "decision" && ev.Session != nil {
				count[ev.Session.UID]++
			}
		}
		return count
	}
	run := func(hecURL, session string, at time.Time, wait func()) {
		fs := flag.NewFlagSet("agent", flag.ContinueOnError)
		sf := addSIEMFlags(fs)
		if err := fs.Parse([]string{"--siem-spool", spool, "--siem-hec", hecURL, "--siem-token-file", tokenFile, "--siem-ca", caFile}); err != nil {
			t.Fatal(err)
		}
		export, stop, err := sf.start(logger)
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(agent.Config{Dir: agentDir, Export: export, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		g := a.Guard()
		if _, err := g.OpenSession(session, "alice", at); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			g.Authorize(context.Background(), session, "transfer")
		}
		wait()
		cancel() // the agent shuts down: live sessions are saved, then the exporter stops
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		stop()
	}
	run("https://127.0.0.1:1", "s-before", time.Now(), func() {}) // collector unreachable
	// The restarted agent's exporter delivers what the first run spooled, and its own.
	run(srv.URL, "s-after", time.Now(), func() {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			count := delivered()
			if count["s-before"] == 5 && count["s-after"] == 5 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("decisions delivered per session: %v, want 5 each", count)
			}
		}
	})
}
