//go:build unix

package coordinator

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// TestSweepTempDirs: a frontend that starts removes the temporary directory of one that died
// without Close (its lock free), and leaves a live frontend's and any directory without a lock.
func TestSweepTempDirs(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dead, releaseDead, err := newTempDir()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "contributions-1.bin"), make([]byte, 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	releaseDead() // as the kernel does when the process dies
	live, releaseLive, err := newTempDir()
	if err != nil {
		t.Fatal(err)
	}
	unlocked := filepath.Join(tmp, tempDirPattern+"other")
	if err := os.Mkdir(unlocked, 0o700); err != nil {
		t.Fatal(err)
	}

	sweepTempDirs(quiet)
	for dir, want := range map[string]bool{dead: false, live: true, unlocked: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(dir), err == nil, want)
		}
	}
	releaseLive()
	sweepTempDirs(quiet)
	if _, err := os.Stat(live); err == nil {
		t.Errorf("a frontend's directory stayed once its lock was released")
	}
}

// TestAttackSweepFollowsNoLink: a local user who can write to the temporary directory plants
// a frontend-named symlink to a victim directory holding a lock file, and a directory of that
// name holding a link to the victim, hoping a starting frontend removes the victim's files.
// The sweep removes only the links.
func TestAttackSweepFollowsNoLink(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{tempDirLock, "precious"} {
		if err := os.WriteFile(filepath.Join(victim, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(victim, filepath.Join(tmp, tempDirPattern+"link")); err != nil {
		t.Fatal(err)
	}
	holder := filepath.Join(tmp, tempDirPattern+"holder")
	if err := os.Mkdir(holder, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(holder, tempDirLock), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(holder, "inside")); err != nil {
		t.Fatal(err)
	}

	sweepTempDirs(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if _, err := os.Stat(filepath.Join(victim, "precious")); err != nil {
		t.Fatalf("the victim's file: %v", err)
	}
}
