package cluster

import (
	"os"

	"golang.org/x/sys/unix"
)

// born returns when f's inode was created (Unix nanoseconds), or 0 where the file system does
// not say. A file system reuses a freed inode's number at once (ext4 gave a temporary file the
// number of the file its rename had just replaced, 100 times in 100), so the number alone does
// not tell a file grown in place from one replaced.
func born(f *os.File) int64 {
	var st unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH, unix.STATX_BTIME, &st); err != nil || st.Mask&unix.STATX_BTIME == 0 {
		return 0
	}
	return st.Btime.Sec*1e9 + int64(st.Btime.Nsec)
}
