//go:build unix

package coordinator

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/vigilauth/vigil/internal/flock"
)

// A frontend without a Dir keeps its contributions, 1.7 MB per 100,000-parameter update, in a
// temporary directory that Close removes. One killed (SIGKILL, a crash) cannot: the directory
// would stay until someone noticed the disk filling. So each holds an flock on a file in its
// directory for as long as its process lives, and a frontend that starts removes the
// directories whose lock nobody holds: the kernel releases a dead process's locks.

// tempDirPattern names frontends' temporary directories (os.MkdirTemp).
const tempDirPattern = "vigil-frontend-"

// tempDirLock is the file a live frontend holds locked.
const tempDirLock = "lock"

// newTempDir creates a frontend's temporary directory and locks it until release.
func newTempDir() (dir string, release func(), err error) {
	dir, err = os.MkdirTemp("", tempDirPattern)
	if err != nil {
		return "", nil, err
	}
	// Locked under another name, then renamed: a sweeper never sees the lock file unlocked.
	f, err := os.CreateTemp(dir, "lock-")
	if err == nil {
		if err = flock.TryLock(f); err == nil {
			err = os.Rename(f.Name(), filepath.Join(dir, tempDirLock))
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { f.Close() }, nil
}

// sweepTempDirs removes the temporary directories of frontends that died without Close.
func sweepTempDirs(log *slog.Logger) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempDirPattern+"*"))
	for _, dir := range dirs {
		f, err := os.Open(filepath.Join(dir, tempDirLock))
		if err != nil {
			continue // not a frontend's, or one from before the lock
		}
		if err := flock.TryLock(f); err == nil {
			if err := os.RemoveAll(dir); err != nil {
				log.Warn("a dead frontend's directory could not be removed", "dir", dir, "err", err)
			} else {
				log.Info("removed the directory of a frontend that stopped without cleaning up", "dir", dir)
			}
		}
		f.Close()
	}
}
