// Package atomicfile writes files so that a reader, or a process starting again after a crash,
// finds either the old content or the new one, never a part: the data goes to a temporary file
// in the same directory, is synced, renamed (or linked) into place, and the directory is synced
// so that the new name itself survives a crash.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// tempMarker is in the name of every temporary file: ".<name>.tmp-<random>".
const tempMarker = ".tmp-"

// IsTemp reports whether name (a base name) is a temporary file this package may have left
// behind when a process died mid-write; such files are never the content of a write.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMarker)
}

// Write replaces path with data, with permissions perm.
func Write(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm, false, true)
}

// WriteUnsynced is Write without the syncs: a reader sees the old content or the new one, and
// so does a process starting after this one died, but after the machine crashed path may hold
// neither, or be gone. It is for data that is as durable as something else that is not synced
// either, at a small part of the cost: with writers in parallel, each sync cost several times
// the write itself.
func WriteUnsynced(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm, false, false)
}

// Create writes data to path, with permissions perm, only if nothing is there yet; otherwise it
// returns an error wrapping fs.ErrExist and leaves the existing file alone. Of two processes
// creating the same path at once, exactly one wins.
func Create(path string, data []byte, perm fs.FileMode) error {
	return writeFile(path, data, perm, true, true)
}

func writeFile(path string, data []byte, perm fs.FileMode, exclusive, synced bool) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempMarker+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if synced {
		if err = f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	if err = f.Close(); err != nil {
		return err
	}
	if exclusive {
		// Unlike rename, a hard link fails if the target exists.
		err = os.Link(tmp, path)
		os.Remove(tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", path, fs.ErrExist)
		}
	} else {
		err = os.Rename(tmp, path)
	}
	if err != nil || !synced {
		return err
	}
	return SyncDir(dir)
}

// SyncDir makes the entries of dir durable, such as a file just renamed into it.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // directories cannot be opened for syncing; NTFS renames are journalled
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
