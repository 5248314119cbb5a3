package pki

import (
	"errors"
	"fmt"
	"os"

	"github.com/vigilauth/vigil/internal/flock"
)

// lockFile takes an exclusive advisory lock on path (created if absent), blocking until it is
// free. The lock serialises the read-modify-write cycles of the coordinator and of `vigil pki`
// commands running beside it. Each call opens its own descriptor, so goroutines of one process
// exclude each other too. Where there is no flock, each store still serialises its own callers
// with its mutex: run `vigil pki` commands that write (token, revoke) only while no coordinator
// runs.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pki: lock: %w", err)
	}
	switch err := flock.Lock(f); {
	case errors.Is(err, errors.ErrUnsupported):
		// No cross-process lock on this system: the store's mutex still serialises its own
		// callers (see above).
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("pki: %w", err)
	}
	return func() {
		flock.Unlock(f)
		f.Close()
	}, nil
}
