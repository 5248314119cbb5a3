//go:build !unix

// Package flock takes advisory, exclusive locks on open files with flock(2). Where there is
// none it grants no lock: every call fails with errors.ErrUnsupported, and a caller that can
// run unlocked says so itself.
package flock

import (
	"errors"
	"fmt"
	"os"
)

// ErrLocked means another descriptor holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock fails here: there is no flock.
func Lock(f *os.File) error { return unsupported(f) }

// TryLock fails here: there is no flock.
func TryLock(f *os.File) error { return unsupported(f) }

// Unlock fails here: there is no flock.
func Unlock(f *os.File) error { return unsupported(f) }

func unsupported(f *os.File) error { return fmt.Errorf("lock %s: %w", f.Name(), errors.ErrUnsupported) }
