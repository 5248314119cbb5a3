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
