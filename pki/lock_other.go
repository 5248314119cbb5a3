//go:build !unix

package pki

// lockFile has no cross-process lock where flock is unavailable; each store still serialises its
// own callers with its mutex. On these systems run `vigil pki` commands that write (token,
// revoke) only while no coordinator runs.
func lockFile(path string) (unlock func(), err error) {
	return func() {}, nil
}
