//go:build unix

package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestAttackFIFOInDirectoryStore: whoever writes a
// directory store (a sync tool, a shared mount) puts a named pipe, or a link to a device, where
// an object belongs. Opening a FIFO for reading waited for a writer for ever, whatever the
// context's deadline: the device's poll hung and `vigil agent` did not exit. A key that is not a
// regular file is now refused at once (ErrNotRegular).
func TestAttackFIFOInDirectoryStore(t *testing.T) {
	s, err := NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir(), "releases", "m"), 0o755); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(s.Dir(), "releases", "m", "latest.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	t.Cleanup(func() {
		// Unblock a reader the code before the fix left waiting, so that the test ends.
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	if err := os.Symlink("/dev/zero", filepath.Join(s.Dir(), "releases", "m", "zero")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"releases/m/latest.json", "releases/m/zero", "releases/m"} {
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		go func() { _, err := s.GetLimit(ctx, key, 1<<20); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("%s: %v, want ErrNotRegular", key, err)
			}
		case <-time.After(3 * time.Second):
			t.Errorf("%s: GetLimit still reading 3 s after it started, with a 300 ms deadline", key)
		}
		cancel()
	}
	// A regular file still reads, through the same open.
	if err := s.Put(context.Background(), "releases/m/ok", []byte("ok")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(context.Background(), "releases/m/ok"); err != nil || string(got) != "ok" {
		t.Fatalf("regular file: %q, %v", got, err)
	}
}
