//go:build !unix

// Package flock takes advisory, exclusive locks on open files with flock(2). Where there is
// none, every lock is granted: callers document what that leaves unprotected.
package flock

import (
	"errors"
	"os"
)

// ErrLocked means another descriptor holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock does nothing here.
func Lock(*os.File) error { return nil }

// TryLock does nothing here.
func TryLock(*os.File) error { return nil }

// Unlock does nothing here.
func Unlock(*os.File) error { return nil }
