package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/internal/flock"
)

// trusteeLockFile is the lock a serving trustee holds in its directory.
const trusteeLockFile = "serve.lock"

// errTrusteeLocked means another `vigil trustee serve` holds the directory.
var errTrusteeLocked = errors.New("another trustee process is serving this directory")

// lockTrusteeDir takes an exclusive, non-blocking lock on dir/serve.lock for as long as the
// process serves: two processes on one share would keep two journals of what was decrypted,
// and each could be asked to decrypt what the other already has. The kernel drops the lock
// when the process dies, so a crash leaves nothing to clean up.
func lockTrusteeDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, trusteeLockFile)
	unlock, err = lockFile(path)
	if errors.Is(err, flock.ErrLocked) {
		return nil, fmt.Errorf("%w (%s is locked)", errTrusteeLocked, path)
	}
	return unlock, err
}

// deviceLockFile is the lock `vigil agent` and `vigil client` hold in a device's directory.
const deviceLockFile = "device.lock"

// lockDeviceDir makes dir (which flag names) if needed and locks it for as long as the
// process runs: two processes on one device's directory would each rewrite its sealed state,
// privacy ledger and audit log under the other, and a starting agent cuts what it takes for
// a crash's torn line off a log the other is writing.
func lockDeviceDir(flag, dir string) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	path := filepath.Join(dir, deviceLockFile)
	unlock, err = lockFile(path)
	if errors.Is(err, flock.ErrLocked) {
		pid, _ := os.ReadFile(path)
		return nil, fmt.Errorf("%s %s is in use by another vigil agent or client (process %s)", flag, dir, strings.TrimSpace(string(pid)))
	}
	return unlock, err
}

// lockFile takes an exclusive, non-blocking lock on path, creating it, and writes this
// process's ID into it. Another process's lock is an error wrapping flock.ErrLocked.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := flock.TryLock(f); err != nil {
		f.Close()
		return nil, err
	}
	f.Truncate(0)
	fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() {
		flock.Unlock(f)
		f.Close()
	}, nil
}

// trusteePlaintextCheck refuses to serve in the clear unless the operator said so: without
// --pki-dir anyone who reaches the port could ask for decryptions.
func trusteePlaintextCheck(pkiDir string, insecurePlaintext bool) error {
	switch {
	case pkiDir == "" && !insecurePlaintext:
		return errors.New("trustee serve: --pki-dir is required: it holds the TLS credentials that admit only the coordinator " +
			"(from `vigil setup` in ORG/trustees/ID/tls, or `vigil pki issue-trustee`); to serve in the clear on a loopback address for debugging, say --insecure-plaintext")
	case pkiDir != "" && insecurePlaintext:
		return errors.New("trustee serve: --insecure-plaintext conflicts with --pki-dir")
	}
	return nil
}
