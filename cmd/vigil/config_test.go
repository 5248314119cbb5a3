package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExpandConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	coord := write("coordinator.conf", "# the coordinator\norg = org\nround-interval = 1m\ntrustee = a=127.0.0.1:7171\ntrustee = b=127.0.0.1:7172\ninsecure-no-dp = false\n")
	bad := write("bad.conf", "org org\n")
	loop := write("loop.conf", "config = other.conf\n")
	for _, tc := range []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{"none", []string{"--org", "x"}, []string{"--org", "x"}, ""},
		{"file first, command line wins", []string{"--config", coord, "--round-interval", "2m"},
			[]string{"--org=org", "--round-interval=1m", "--trustee=a=127.0.0.1:7171", "--trustee=b=127.0.0.1:7172", "--insecure-no-dp=false", "--round-interval", "2m"}, ""},
		{"after a subcommand", []string{"serve", "--config=" + coord},
			[]string{"serve", "--org=org", "--round-interval=1m", "--trustee=a=127.0.0.1:7171", "--trustee=b=127.0.0.1:7172", "--insecure-no-dp=false"}, ""},
		{"missing file", []string{"--config", filepath.Join(dir, "nope")}, nil, "--config"},
		{"no file given", []string{"--config"}, nil, "--config needs a file"},
		{"bad line", []string{"--config", bad}, nil, "bad.conf:1"},
		{"nested", []string{"--config", loop}, nil, "cannot name another"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expandConfig(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("expandConfig(%q) = %q, %v; want an error mentioning %q", tc.args, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("expandConfig(%q) = %q, %v; want %q", tc.args, got, err, tc.want)
			}
		})
	}
}

// TestUnknownConfigSettingNamesTheFile: a setting the command does not know is reported with
// the --config file that set it.
func TestUnknownConfigSettingNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.conf")
	if err := os.WriteFile(path, []byte("org = x\nbogus-key = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := run(context.Background(), []string{"coordinator", "--config", path}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"bogus-key" is set in --config `+path) {
		t.Fatalf("unknown setting in a config file: %v", err)
	}
}
