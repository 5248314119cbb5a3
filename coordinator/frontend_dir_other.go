//go:build !unix

package coordinator

import (
	"log/slog"
	"os"
)

// newTempDir creates a frontend's temporary directory. Without flock, a killed frontend's
// directory stays (frontend_dir_unix.go).
func newTempDir() (dir string, release func(), err error) {
	dir, err = os.MkdirTemp("", "vigil-frontend-")
	return dir, func() {}, err
}

// sweepTempDirs does nothing where a live frontend's directory cannot be told from a dead one's.
func sweepTempDirs(*slog.Logger) {}
