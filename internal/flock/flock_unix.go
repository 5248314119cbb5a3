//go:build unix

// Package flock takes advisory, exclusive locks on open files with flock(2). The kernel
// releases a lock when the last descriptor of its file closes, so a process that dies holds
// none: a lock file tells a live owner from a dead one. Each open of a file is a lock of its
// own, so two descriptors in one process exclude each other too.
package flock

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrLocked means another descriptor holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock waits until it holds f's lock.
func Lock(f *os.File) error { return lock(f, syscall.LOCK_EX) }

// TryLock takes f's lock, or returns an error wrapping ErrLocked at once.
func TryLock(f *os.File) error { return lock(f, syscall.LOCK_EX|syscall.LOCK_NB) }

// Unlock releases f's lock; closing f does too.
func Unlock(f *os.File) error { return lock(f, syscall.LOCK_UN) }

func lock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, syscall.EINTR):
			continue
		case errors.Is(err, syscall.EWOULDBLOCK):
			return fmt.Errorf("%s: %w", f.Name(), ErrLocked)
		}
		return fmt.Errorf("lock %s: %w", f.Name(), err)
	}
}
