//go:build unix

package updater

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// TestAttackFIFOPointer: whoever writes a directory store replaces a
// model's pointer with a named pipe. Opening it waited for a writer past PollTimeout, for ever:
// the updater said nothing more for that model, and Run (so `vigil agent`, after SIGTERM) never
// returned. Poll now fails at once, naming a file that is not a regular one.
func TestAttackFIFOPointer(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	tr.publishModel(t, st, 1, baseParams(t))
	d := newDevice(t, tr, st)
	d.cfg.PollTimeout = 300 * time.Millisecond
	u := d.open()
	mustPoll(t, u, Installed, 1)

	p := filepath.Join(st.Dir(), filepath.FromSlash(release.LatestKey(testModel)))
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	t.Cleanup(func() {
		// Unblock what the code before the fix left reading, so that the test ends.
		for range 4 {
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
	})
	done := make(chan error, 1)
	go func() { _, err := u.Poll(context.Background()); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, store.ErrNotRegular) {
			t.Fatalf("poll of a FIFO pointer: %v, want store.ErrNotRegular", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Poll still running 3 s after it started, with a 300 ms PollTimeout")
	}
	if s := u.Status(); s.Current != 1 {
		t.Fatalf("after the refused pointer: %+v", s)
	}
}
