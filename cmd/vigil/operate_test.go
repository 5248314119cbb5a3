package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestHelpExitCodes is issue 18's last bullet: help went to stderr (so `vigil --help | less`
// was empty) and -h exited 0 in some commands and 2 in others. Help asked for goes to stdout
// and exits 0; a wrong flag exits 2 naming it.
func TestHelpExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantOut  string
		wantCode int
	}{
		{[]string{"--help"}, "usage: vigil <command>", 0},
		{[]string{"-h"}, "usage: vigil <command>", 0},
		{[]string{"help"}, "usage: vigil <command>", 0},
		{[]string{"status", "-h"}, "usage: vigil status", 0},
		{[]string{"admin", "--help"}, "remove-device", 0},
		{[]string{"admin", "pause", "-h"}, "-operator", 0},
		{[]string{"pki", "operator", "-h"}, "-id", 0},
		{[]string{"version"}, "vigil ", 0},
		{[]string{"--version"}, "vigil ", 0},
		{[]string{"status", "--bogus"}, "", 2},
		{[]string{"admin", "frobnicate"}, "", 2},
		{[]string{}, "", 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			code := 0
			var coded interface{ ExitCode() int }
			switch {
			case err == nil, errors.Is(err, flag.ErrHelp):
			case errors.As(err, &coded):
				code = coded.ExitCode()
			default:
				code = 2
			}
			if code != tc.wantCode || !strings.Contains(stdout.String(), tc.wantOut) {
				t.Errorf("vigil %v: exit %d (err %v), stdout %q; want exit %d and %q on stdout", tc.args, code, err, stdout.String(), tc.wantCode, tc.wantOut)
			}
			if tc.wantCode == 0 && stderr.Len() > 0 {
				t.Errorf("vigil %v wrote to stderr: %q", tc.args, stderr.String())
			}
		})
	}
	// Every command and subcommand: -h prints help on stdout and exits 0.
	for _, c := range commands() {
		args := []string{c.name, "-h"}
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("vigil %s -h: %v (exit status 2)", c.name, err)
		}
		if stdout.Len() == 0 || stderr.Len() > 0 {
			t.Errorf("vigil %s -h: %d bytes on stdout, stderr %q; want the help on stdout", c.name, stdout.Len(), stderr.String())
		}
	}
	// The same through a real process, as a shell sees it.
	out, err := vigilCmd(context.Background(), "status", "--help").Output()
	if err != nil || !bytes.Contains(out, []byte("usage: vigil status")) {
		t.Errorf("vigil status --help as a process: %v, stdout %q", err, out)
	}
	err = vigilCmd(context.Background(), "status", "--round-timeout", "5").Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Errorf("vigil status with a wrong flag as a process: %v, want exit status 2", err)
	}
}

// TestTrusteeServeSafety is issue 18's fourth bullet with real processes: `trustee serve`
// without --pki-dir served in the clear with no warning, and a second serve on the same
// directory started. Now the first is refused unless --insecure-plaintext, and the second
// exits naming the lock.
func TestTrusteeServeSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	orgDir := org(t)
	dir := filepath.Join(orgDir, "trustees", "audit")
	base := []string{"trustee", "serve", "--dir", dir, "--root", filepath.Join(orgDir, "root.json"), "--min-contributors", "3", "--listen", "127.0.0.1:0"}

	var stderr bytes.Buffer
	c := vigilCmd(ctx, base...)
	c.Stderr = &stderr
	if err := c.Run(); err == nil || !strings.Contains(stderr.String(), "--insecure-plaintext") {
		t.Fatalf("trustee serve without --pki-dir: %v, stderr %q; want a refusal naming --insecure-plaintext", err, stderr.String())
	}

	_, lines, _ := startProcess(t, ctx, append(base, "--pki-dir", filepath.Join(dir, "tls"), "--log-level", "warn")...)
	lines.wait(t, "trustee audit")
	stderr.Reset()
	c = vigilCmd(ctx, append(base, "--pki-dir", filepath.Join(dir, "tls"))...)
	c.Stderr = &stderr
	if err := c.Run(); err == nil || !strings.Contains(stderr.String(), "another trustee process is serving this directory") {
		t.Fatalf("second trustee serve on %s: %v, stderr %q; want the lock named", dir, err, stderr.String())
	}
}

// TestOperatorWalkthrough follows the README's operator section with real processes: the
// organisation, its enrolment authority and three trustees, a paced coordinator with DP on
// by default, three devices; `vigil pki operator`, `vigil status` (text and JSON), /healthz
// and /readyz, `vigil admin pause`, `vigil pki revoke` of one device and `vigil admin
// remove-device` of another, after which both leave the registry and their clients stop with
// a clear message instead of retrying forever.
func TestOperatorWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	orgDir, dir, region := org(t), t.TempDir(), t.TempDir()
	enrolAddr := startAuthority(t, ctx, orgDir)
	// The coordinator must run until the test stops it: at the default budget (epsilon 10) the
	// fourth round, about 6 s in, would exceed it and the coordinator would exit, on a loaded
	// machine before the operator has paused it. A budget these rounds cannot spend, on the
	// coordinator and on the devices' own ledgers, keeps it and them going.
	args := []string{"coordinator", "--org", orgDir, "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--admin-listen", "127.0.0.1:0", "--region", "eu=" + region, "--devices-per-round", "3", "--min-updates", "3",
		"--round-interval", "2s", "--epsilon", "1000", "--log-level", "warn"}
	coord, lines, coordErr := startProcess(t, ctx, append(args, startTrustees(t, ctx, orgDir, 3)...)...)
	addr := lines.wait(t, "coordinator listening on ")
	admin := strings.Fields(lines.wait(t, "operators' API on "))[0]
	metricsURL := lines.wait(t, "metrics on ")
	go func() {
		for range lines.lines {
		}
	}()

	var clients []*exec.Cmd
	var errs []*syncBuffer
	var outs []*lineWaiter
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("d%d", i)
		args := append([]string{"client", "--coordinator", addr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", filepath.Join(orgDir, "root.json"), "--region-store", region, "--poll", "200ms", "--synthetic-seed", fmt.Sprint(i),
			"--epsilon", "1000", "--log-level", "error"}, enrolFlags(t, orgDir, enrolAddr, id)...)
		if i == 1 {
			args = append(args, "--metrics-listen", "127.0.0.1:0")
		}
		c, out, stderr := startProcess(t, ctx, args...)
		clients, outs, errs = append(clients, c), append(outs, out), append(errs, stderr)
	}

	clientMetrics := outs[0].wait(t, "metrics on ")
	var out bytes.Buffer
	if err := run(ctx, []string{"pki", "operator", "--dir", filepath.Join(orgDir, "pki"), "--id", "alice"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	operator := filepath.Join(orgDir, "operators", "alice")
	status := func() *vigilv1.StatusResponse {
		t.Helper()
		var out bytes.Buffer
		if err := run(ctx, []string{"status", "--operator", operator, "--coordinator", admin, "--json"}, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var st vigilv1.StatusResponse
		if err := protojson.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatalf("vigil status --json: %v\n%s", err, out.String())
		}
		return &st
	}
	deadline := time.Now().Add(2 * time.Minute)
	for st := status(); st.GetCompletedRounds() < 2; st = status() {
		if time.Now().After(deadline) {
			t.Fatalf("no two rounds completed; status %v", st)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// The devices' port refuses operators; the error says which address to give (a docs
	// review took the one for the other).
	if err := run(ctx, []string{"status", "--operator", operator, "--coordinator", addr}, io.Discard, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "--admin-listen address?") {
		t.Errorf("vigil status against the devices' port: %v, want a hint at --admin-listen", err)
	}
	st := status()
	if p := st.GetPrivacy(); !p.GetDifferentialPrivacy() || !(p.GetEpsilonSpent() > 0) || !(p.GetEpsilonRemaining() < p.GetEpsilonBudget()) {
		t.Errorf("status privacy %v: want DP on, some epsilon spent", p)
	}
	if len(st.GetTrustees()) != 3 || len(st.GetDevices()) != 3 {
		t.Errorf("status: trustees %v, devices %v; want 3 and 3", st.GetTrustees(), st.GetDevices())
	}
	for _, tr := range st.GetTrustees() {
		if tr.GetProblem() != "" {
			t.Errorf("trustee %s: %s", tr.GetId(), tr.GetProblem())
		}
	}
	// Rounds are paced: two completed rounds took at least the interval between their starts.
	out.Reset()
	if err := run(ctx, []string{"status", "--operator", operator, "--coordinator", admin}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	t.Logf("vigil status:\n%s", out.String())
	for _, want := range []string{"keystroke-ae v", "epsilon", "d1", "privacy-office", "eu"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("vigil status lacks %q:\n%s", want, out.String())
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(strings.TrimSuffix(metricsURL, "/metrics") + path)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %v %v", path, resp, err)
		} else {
			resp.Body.Close()
		}
	}

	for url, wants := range map[string][]string{
		metricsURL:    {"vigil_rpc_server_duration_seconds_count{code=\"OK\",method=\"/vigil.v1.Coordinator/SubmitUpdate\"}", "vigil_privacy_epsilon_remaining", "vigil_trustee_up{trustee=\"audit\"} 1", "go_build_info", "go_goroutines"},
		clientMetrics: {"vigil_rpc_client_duration_seconds_count{code=\"OK\",method=\"/vigil.v1.Coordinator/SubmitUpdate\"}", "vigil_client_rounds_total", "go_build_info"},
	} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range wants {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("%s lacks %q", url, want)
			}
		}
	}

	if err := run(ctx, []string{"admin", "pause", "--operator", operator, "--coordinator", admin}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !status().GetPaused() {
		t.Error("status does not say paused after vigil admin pause")
	}
	// d3 is revoked by another process, as the issue did it, while rounds are paused; d2 is
	// removed through the admin API. Both leave the registry, and both clients stop.
	revoke := []string{"pki", "revoke", "--dir", filepath.Join(orgDir, "pki"), "--coordinator-dir", dir, "--device-id"}
	if err := run(ctx, append(revoke, "d9"), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "has not enrolled it") {
		t.Errorf("vigil pki revoke of a device the coordinator does not know: %v, want a refusal", err)
	}
	if err := run(ctx, append(revoke, "d3"), io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(ctx, []string{"admin", "remove-device", "--operator", operator, "--coordinator", admin, "--device-id", "d2"}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(status().GetRemoved()) < 2; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("status removed %v, want d2 and d3", status().GetRemoved())
		}
	}
	st = status()
	if rm := st.GetRemoved(); rm[0].GetId() != "d2" || rm[1].GetId() != "d3" || !strings.HasPrefix(rm[1].GetReason(), "revoked") ||
		len(st.GetDevices()) != 1 {
		t.Errorf("status removed %v, devices %v; want d2 removed, d3 revoked, d1 left", rm, st.GetDevices())
	}
	for _, i := range []int{1, 2} {
		go func() {
			for range outs[i].lines {
			}
		}()
		done := make(chan error, 1)
		go func() { done <- clients[i].Wait() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(errs[i].String(), "revoked") || !strings.Contains(errs[i].String(), "to enrol again, move") {
				t.Errorf("d%d's client: %v, stderr %q; want a non-zero exit saying it is revoked and how to enrol again", i+1, err, errs[i].String())
			}
		case <-time.After(40 * time.Second):
			t.Fatalf("d%d's client kept retrying", i+1)
		}
	}

	go func() {
		for range outs[0].lines {
		}
	}()
	clients[0].Process.Signal(syscall.SIGTERM)
	clients[0].Wait()
	coord.Process.Signal(syscall.SIGTERM)
	if err := coord.Wait(); err != nil {
		t.Fatalf("coordinator: %v\n%s", err, coordErr.String())
	}
}

// TestFreshCoordinatorAgainstServedTrustees is issue 18's third bullet with real processes: a
// fresh coordinator against trustees that had already decrypted its round numbers failed two
// rounds in 0.2 s, spent 88.5% of its budget and exited 0. Now it stops before any round, with
// a non-zero exit naming the trustees, and its ledger records nothing.
func TestFreshCoordinatorAgainstServedTrustees(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	orgDir, first, fresh := org(t), t.TempDir(), t.TempDir()
	enrolAddr := startAuthority(t, ctx, orgDir)
	trustees := startTrustees(t, ctx, orgDir, 3)
	base := []string{"coordinator", "--org", orgDir, "--listen", "127.0.0.1:0", "--metrics-listen", "", "--devices-per-round", "3",
		"--min-updates", "3", "--log-level", "warn", "--population-noise", "0"} // the clients take part in one round
	coord, lines, coordErr := startProcess(t, ctx, append(append(base, "--dir", first, "--rounds", "1"), trustees...)...)
	addr := lines.wait(t, "coordinator listening on ")
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("d%d", i)
		args := append([]string{"client", "--coordinator", addr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", filepath.Join(orgDir, "root.json"), "--synthetic-seed", fmt.Sprint(i), "--rounds", "1", "--log-level", "error"},
			enrolFlags(t, orgDir, enrolAddr, id)...)
		_, out, _ := startProcess(t, ctx, args...)
		go func() {
			for range out.lines {
			}
		}()
	}
	lines.wait(t, "stopped after 1 rounds")
	if err := coord.Wait(); err != nil {
		t.Fatalf("first coordinator: %v\n%s", err, coordErr.String())
	}

	var stderr bytes.Buffer
	c := vigilCmd(ctx, append(append(base, "--dir", fresh), trustees...)...)
	c.Stderr = &stderr
	start := time.Now()
	err := c.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 || !strings.Contains(stderr.String(), "already decrypted") {
		t.Fatalf("fresh coordinator against served trustees: %v after %v, stderr:\n%s\nwant a non-zero exit naming the trustees", err, time.Since(start), stderr.String())
	}
	t.Logf("fresh coordinator, exit status %d after %v:\n%s", exit.ExitCode(), time.Since(start).Round(time.Millisecond), stderr.String())
	var report bytes.Buffer
	run(ctx, []string{"privacy", "report", "--dir", fresh, "--json"}, &report, io.Discard)
	if bytes.Contains(report.Bytes(), []byte(`"round"`)) {
		t.Errorf("the fresh coordinator's ledger records rounds:\n%s", report.String())
	}
}

// TestCommonMistakesSayWhatToDo: mistakes a docs review made, each answered with what to do.
func TestCommonMistakesSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", "org", "setup"}, "flags come after the command (vigil setup --dir ...)"},
		{[]string{"preflight", "--kit", filepath.Join(t.TempDir(), "nothere")}, "no such file or directory"},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("vigil %s: %v, want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

// TestDashedFlags: errors name flags as the help does, with two dashes; the flag package and
// some messages wrote one (a docs review).
func TestDashedFlags(t *testing.T) {
	for in, want := range map[string]string{
		"setup: flag provided but not defined: -orgg (see 'vigil setup -h')": "setup: flag provided but not defined: --orgg (see 'vigil setup -h')",
		`invalid value "abc" for flag -epsilon: parse error`:                 `invalid value "abc" for flag --epsilon: parse error`,
		"flag needs an argument: -dir":                                       "flag needs an argument: --dir",
		"flag -data: no directory given":                                     "flag --data: no directory given",
		"release publish: --from -x is not a flag":                           "release publish: --from -x is not a flag",
		"a -5h validity": "a -5h validity",
	} {
		if got := dashedFlags(in); got != want {
			t.Errorf("dashedFlags(%q) = %q, want %q", in, got, want)
		}
	}
}
