package pki

import (
	"errors"
	"fmt"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// writeFileAtomic replaces path with data so that a crash leaves either the old or the new
// contents, never a mix. With exclusive set it refuses to replace an existing file.
func writeFileAtomic(path string, data []byte, mode os.FileMode, exclusive bool) error {
	if !exclusive {
		if err := atomicfile.Write(path, data, mode); err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		return nil
	}
	err := atomicfile.Create(path, data, mode)
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pki: %s exists already; refusing to overwrite it", path)
	}
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}

// readFileLimited reads a regular file of at most limit bytes.
func readFileLimited(path string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("pki: %s is not a regular file", path)
	}
	if info.Size() > limit {
		return nil, nil, fmt.Errorf("pki: %s is %d bytes, the limit is %d", path, info.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("pki: read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("pki: %s grew past %d bytes while being read", path, limit)
	}
	return data, info, nil
}

// checkPrivate refuses a secret file that group or others may access, as ssh does: such a key
// may already be compromised.
func checkPrivate(path string, info fs.FileInfo) error {
	if runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("pki: %s has mode %04o; it must not be accessible to group or others (chmod 600 %s)",
			path, info.Mode().Perm(), path)
	}
	return nil
}
