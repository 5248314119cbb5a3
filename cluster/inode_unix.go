//go:build unix

package cluster

import (
	"io/fs"
	"syscall"
)

// inode tells a file replaced by a rename from the same file grown in place.
func inode(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}
