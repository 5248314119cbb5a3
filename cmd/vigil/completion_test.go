package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestComplete(t *testing.T) {
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"sta"}, "status\n"},
		{[]string{"admin", "re"}, "resume\nremove-device\n"},
		{[]string{"coordinator", "--round-i"}, "--round-interval\n"},
		{[]string{"trustee", "serve", "--insecure"}, "--insecure-plaintext\n"},
		{[]string{"status", "--operator", "dir", "--js"}, "--json\n"},
		{[]string{"status", "--operator", "x"}, ""}, // a flag's value: the shell completes files
	} {
		var out bytes.Buffer
		if err := run(context.Background(), append([]string{"__complete"}, tc.words...), &out, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("__complete %q = %q, want %q", tc.words, out.String(), tc.want)
		}
	}
}

// TestBashCompletion loads the bash script into a real bash with this test binary as vigil.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	var script bytes.Buffer
	if err := run(context.Background(), []string{"completion", "bash"}, &script, &script); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "vigil")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nVIGIL_TEST_AS_MAIN=1 exec "+os.Args[0]+" \"$@\"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bash, "-c", script.String()+`
COMP_WORDS=(vigil admin pa); COMP_CWORD=2; _vigil; printf '%s\n' "${COMPREPLY[@]}"`)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "pause" {
		t.Fatalf("bash completion of `vigil admin pa`: %v, %q; want pause", err, out)
	}
}
