package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestMousePopulationFlags: the population rounds' flags are refused with a message naming
// them when they cannot mean anything. NaN, which compares false with everything, turned the
// rounds off instead.
func TestMousePopulationFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"coordinator", "--org", t.TempDir(), "--insecure-plaintext", "--mouse-population-noise", "-1"}, "--mouse-population-noise"},
		{[]string{"coordinator", "--org", t.TempDir(), "--insecure-plaintext", "--mouse-reference-noise", "2"}, "without --mouse-population-noise"},
		{[]string{"coordinator", "--org", t.TempDir(), "--insecure-plaintext", "--insecure-no-dp", "--mouse-population-noise", "1", "--mouse-reference-noise", "2"}, "--mouse-reference-noise"},
		{[]string{"demo", "--mouse-population-noise", "-1"}, "--mouse-population-noise"},
		{[]string{"demo", "--mouse-population-noise", "1", "--aalto", t.TempDir()}, "no mouse data"},
		{[]string{"coordinator", "--org", t.TempDir(), "--insecure-plaintext", "--population-noise", "NaN"}, "--population-noise"},
		{[]string{"coordinator", "--org", t.TempDir(), "--insecure-plaintext", "--mouse-population-noise", "NaN"}, "--mouse-population-noise"},
		{[]string{"coordinator", "--org", t.TempDir(), "--insecure-plaintext", "--mouse-population-noise", "1", "--mouse-reference-noise", "+Inf"}, "--mouse-reference-noise"},
		{[]string{"demo", "--population-noise", "NaN"}, "--population-noise"},
		{[]string{"demo", "--mouse-population-noise", "NaN"}, "--mouse-population-noise"},
	} {
		err := run(context.Background(), tc.args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a refusal mentioning %q", tc.args, err, tc.want)
		}
	}
}

// TestCoordinatorTrusteeFlags: a --trustee the key epoch does not name, one named twice, or
// fewer than a round needs commitments from (a review: two of a 2-of-3 epoch's three, where
// Quorum(3, 2) = 3), is refused at start, naming it; before, the coordinator ran on without
// ever starting a round, its status and /readyz green.
func TestCoordinatorTrusteeFlags(t *testing.T) {
	orgDir := org(t)
	for _, tc := range []struct {
		trustees []string
		want     string
	}{
		{[]string{"bob=127.0.0.1:1"}, `has no trustee "bob"`},
		{[]string{"audit=127.0.0.1:1", "audit=127.0.0.1:2"}, `"audit" is given twice`},
		{[]string{"privacy-office=127.0.0.1:1", "security=127.0.0.1:2"},
			"--trustee: key epoch 1 has trustees privacy-office, security, audit, and a round needs commitments from 3 of them (2-of-3); given 2, missing audit"},
		{[]string{"audit=127.0.0.1:1"}, "needs commitments from 3 of them (2-of-3); given 1, missing privacy-office, security"},
	} {
		args := []string{"coordinator", "--org", orgDir, "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", ""}
		for _, tr := range tc.trustees {
			args = append(args, "--trustee", tr)
		}
		// Bounded: a coordinator that accepts the flags runs until stopped.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := run(ctx, args, io.Discard, io.Discard)
		cancel()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a refusal mentioning %q", tc.trustees, err, tc.want)
		}
	}
}

// TestTrusteeNamedAsConfigured: a trustee down when the
// coordinator started was named by its position ("#2") in vigil_trustee_up, the log and the
// status, and kept a stale series when it came back. The coordinator's trustees are named by
// their --trustee ids from the first check.
func TestTrusteeNamedAsConfigured(t *testing.T) {
	orgDir := org(t)
	key, err := orgKey(orgDir)
	if err != nil {
		t.Fatal(err)
	}
	auth, creds, err := orgCoordinator(orgDir)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 1: every trustee is down.
	tc, err := dialTrustees(key, []string{"audit=127.0.0.1:1", "privacy-office=127.0.0.1:1", "security=127.0.0.1:1"}, creds, auth)
	if err != nil {
		t.Fatal(err)
	}
	health, err := tc.Ready(context.Background(), 1, 3)
	if err == nil {
		t.Fatal("Ready with every trustee down succeeded")
	}
	for i, want := range []string{"audit", "privacy-office", "security"} {
		if i >= len(health) || health[i].ID != want || health[i].Reachable {
			t.Fatalf("health %+v, want audit, privacy-office and security, each down", health)
		}
		if !strings.Contains(err.Error(), "trustee "+want+": ") {
			t.Errorf("Ready's error %q does not name %s", err, want)
		}
	}
}

// TestDevicePrivacyFlags: a device's --delta outside (0, 1e-3] is refused before it reaches
// anything, naming the flag; `vigil client --delta 2` enrolled first, then blamed --epsilon.
func TestDevicePrivacyFlags(t *testing.T) {
	for _, args := range [][]string{
		{"client", "--coordinator", "127.0.0.1:1", "--device-id", "d1", "--dir", t.TempDir(), "--synthetic-seed", "1", "--insecure-plaintext", "--insecure-no-dp", "--delta", "2"},
		{"client", "--coordinator", "127.0.0.1:1", "--device-id", "d1", "--dir", t.TempDir(), "--synthetic-seed", "1", "--insecure-plaintext", "--insecure-no-dp", "--delta", "NaN"},
		{"agent", "--dir", t.TempDir(), "--coordinator", "127.0.0.1:1", "--device-id", "d1", "--root", "root.json", "--delta", "0.5"},
	} {
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--delta") {
			t.Errorf("%v: %v, want a refusal naming --delta", args, err)
		}
	}
}

// TestDeviceDirInUse: a second `vigil agent` (or `vigil client`, which takes the same lock
// once it has its identity) on a device's directory is refused, naming it, before its
// sealed state is read.
func TestDeviceDirInUse(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDeviceDir("--dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"agent", "--dir", dir, "--grpc", "", "--http", "127.0.0.1:0"}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--dir "+dir+" is in use by another vigil agent or client") {
		t.Errorf("agent on a directory in use: %v, want a refusal naming it", err)
	}
	if _, err := lockDeviceDir("--dir", dir); err == nil {
		t.Error("a second lock of a directory in use was taken")
	}
	unlock()
	again, err := lockDeviceDir("--dir", dir)
	if err != nil {
		t.Fatalf("once the first process let go: %v", err)
	}
	again()
}
