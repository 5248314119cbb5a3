//go:build unix

package store

import (
	"os"
	"syscall"
)

// openRead opens p for reading without blocking: opening a FIFO for reading waits for a
// writer, however long (a review: a FIFO at a release pointer hung the updater past its
// deadline and kept `vigil agent` from exiting), and so may a device file. GetLimit refuses
// what is not a regular file before it reads.
func openRead(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// setBlocking clears O_NONBLOCK on a regular file, which Linux ignores for reads from a local
// file system but some network file systems may not.
func setBlocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
