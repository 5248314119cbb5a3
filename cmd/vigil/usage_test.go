package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"regexp"
	"strings"
	"testing"
)

// TestHelpLooksTheSame is issue 18's "one usage printer": every command and subcommand prints
// its help on stdout with exit 0, in one layout (a usage line, flags spelt --name with a
// placeholder that is not a Go type name), and lists the environment variables it reads; a
// wrong flag prints no page of help.
func TestHelpLooksTheSame(t *testing.T) {
	goType := regexp.MustCompile(`^  --[a-z0-9-]+ (string|int|uint|float|float64|value|duration|int64|uint64)$`)
	var paths [][]string
	for _, c := range commands() {
		paths = append(paths, []string{c.name})
		var help bytes.Buffer
		run(context.Background(), []string{c.name, "-h"}, &help, &help)
		for _, line := range strings.Split(help.String(), "\n") {
			if m := helpSub.FindStringSubmatch(line); m != nil && m[1] != "help" {
				paths = append(paths, []string{c.name, m[1]})
			}
		}
	}
	if len(paths) < 50 {
		t.Fatalf("found %d commands and subcommands, want every one (50 or more)", len(paths))
	}
	for _, path := range paths {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append(path, "-h"), &stdout, &stderr)
		out := stdout.String()
		name := strings.Join(path, " ")
		switch {
		case err != nil && !errors.Is(err, flag.ErrHelp):
			t.Errorf("vigil %s -h: %v, want exit 0", name, err)
		case stderr.Len() > 0:
			t.Errorf("vigil %s -h wrote to stderr: %q", name, stderr.String())
		case !strings.HasPrefix(out, "usage: vigil "+path[0]):
			t.Errorf("vigil %s -h does not start with its usage line: %.80q", name, out)
		case strings.Contains(out, "Usage of"):
			t.Errorf("vigil %s -h uses the flag package's own printer", name)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") || goType.MatchString(line) {
				t.Errorf("vigil %s -h: flag line %q; want --name and a readable placeholder", name, line)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "publish", "-h"}, "VIGIL_MINIO_ACCESS_KEY"},
		{[]string{"release", "keygen", "-h"}, "VIGIL_KEY_PASSPHRASE_FILE"},
		{[]string{"release", "sign", "release", "-h"}, "VIGIL_KEY_PASSPHRASE_FILE"},
		{[]string{"coordinator", "-h"}, "--round-interval DURATION"},
		{[]string{"privacy", "report", "-h"}, "--dir DIR"},
	} {
		var stdout bytes.Buffer
		run(context.Background(), tc.args, &stdout, &stdout)
		if !strings.Contains(stdout.String(), tc.want) {
			t.Errorf("vigil %s: no %q in\n%s", strings.Join(tc.args, " "), tc.want, stdout.String())
		}
	}
	// A wrong flag is one line on stderr (from main) naming the flag and the command's help,
	// not a page of help.
	for _, args := range [][]string{{"coordinator", "--bogus"}, {"trustee", "serve", "--bogus"}, {"release", "keygen", "--bogus"}} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), args, &stdout, &stderr)
		if err == nil || stdout.Len() > 0 || stderr.Len() > 0 || !strings.Contains(err.Error(), "-bogus") ||
			!strings.Contains(err.Error(), "(see 'vigil "+strings.Join(args[:len(args)-1], " ")+" -h')") {
			t.Errorf("vigil %s: %v, stdout %q, stderr %q; want an error naming the flag and no help", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
	}
}
