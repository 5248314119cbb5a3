package main

import (
	"context"
	"io"
	"strings"
	"testing"
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

// TestCoordinatorTrusteeFlags: a --trustee the key epoch does not name, or one named twice,
// is refused at start, naming it; before, the coordinator ran on without ever starting a
// round.
func TestCoordinatorTrusteeFlags(t *testing.T) {
	orgDir := org(t)
	for _, tc := range []struct {
		trustees []string
		want     string
	}{
		{[]string{"bob=127.0.0.1:1"}, `has no trustee "bob"`},
		{[]string{"audit=127.0.0.1:1", "audit=127.0.0.1:2"}, `"audit" is given twice`},
	} {
		args := []string{"coordinator", "--org", orgDir, "--dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", ""}
		for _, tr := range tc.trustees {
			args = append(args, "--trustee", tr)
		}
		err := run(context.Background(), args, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want a refusal mentioning %q", tc.trustees, err, tc.want)
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
