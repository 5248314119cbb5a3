package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestNoDirHintWhenDirIsGiven: the --dir hint is not given when --dir is set already, nor for
// the value of a true-or-false flag (found by a review).
func TestNoDirHintWhenDirIsGiven(t *testing.T) {
	for _, args := range [][]string{
		{"pki", "show", "--dir", t.TempDir(), "extra"},
		{"setup", "--dir", t.TempDir() + "/org", "extra"},
		{"trustee", "serve", "--dir", t.TempDir(), "--insecure-plaintext", "false"},
		{"loadtest", "--tier", "true"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), args, io.Discard, &stderr)
		if err != nil && strings.Contains(err.Error(), "did you mean --dir") {
			t.Errorf("vigil %s: %v", strings.Join(args, " "), err)
		}
	}
}
