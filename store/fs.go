package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// FS is a Store on a local directory. Each object is one file; writes go to a temporary file in
// the same directory that is synced and renamed into place, so a crash leaves the old object or
// the new one.
type FS struct {
	root     string
	unsynced bool
}

var (
	_ Store         = (*FS)(nil)
	_ LimitedGetter = (*FS)(nil)
	_ Deleter       = (*FS)(nil)
)

// NewFS returns a Store rooted at dir, creating dir if needed.
func NewFS(dir string) (*FS, error) {
	if dir == "" {
		return nil, errors.New("store: empty directory")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	return &FS{root: dir}, nil
}

// NewUnsyncedFS is NewFS whose Put does not sync, for objects that need only survive the
// writer's death, not the machine's (atomicfile.WriteUnsynced; Create still syncs): the coordinator tier's updates in a directory, whose
// records in the tier's embedded JetStream are synced only every two minutes themselves.
func NewUnsyncedFS(dir string) (*FS, error) {
	s, err := NewFS(dir)
	if err != nil {
		return nil, err
	}
	s.unsynced = true
	return s, nil
}

// Dir returns the directory the store lives in.
func (s *FS) Dir() string { return s.root }

func (s *FS) path(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Get implements Store.
func (s *FS) Get(ctx context.Context, key string) ([]byte, error) {
	return s.GetLimit(ctx, key, MaxObjectBytes)
}

// GetLimit implements LimitedGetter.
func (s *FS) GetLimit(ctx context.Context, key string, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := s.path(key)
	if err != nil {
		return nil, err
	}
	f, err := openRead(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if !info.Mode().IsRegular() {
		// A FIFO, a device or a directory: reading it may block for ever, or never end.
		return nil, fmt.Errorf("%w: %s is a %s", ErrNotRegular, key, fileKind(info.Mode()))
	}
	if err := setBlocking(f); err != nil {
		return nil, fmt.Errorf("store: %s: %w", key, err)
	}
	limit = min(limit, MaxObjectBytes)
	if info.Size() > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrTooLarge, key, info.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", key, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s exceeds %d bytes", ErrTooLarge, key, limit)
	}
	return data, nil
}

// fileKind names what a file that is not a regular one is.
func fileKind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeDevice != 0:
		return "device"
	case m.IsDir():
		return "directory"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "file of mode " + m.Type().String()
}

// Put implements Store.
func (s *FS) Put(ctx context.Context, key string, data []byte) error {
	return s.write(ctx, key, data, false)
}

// Create implements Store.
func (s *FS) Create(ctx context.Context, key string, data []byte) error {
	return s.write(ctx, key, data, true)
}

func (s *FS) write(ctx context.Context, key string, data []byte, exclusive bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(data) > MaxObjectBytes {
		return fmt.Errorf("%w: %s: %d bytes", ErrTooLarge, key, len(data))
	}
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	switch {
	case exclusive:
		if err = atomicfile.Create(p, data, 0o644); errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExist, key)
		}
	case s.unsynced:
		err = atomicfile.WriteUnsynced(p, data, 0o644)
	default:
		err = atomicfile.Write(p, data, 0o644)
	}
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// List implements Store.
func (s *FS) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var keys []string
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || atomicfile.IsTemp(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if strings.HasPrefix(key, prefix) && ValidKey(key) == nil {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: list %q: %w", prefix, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Delete implements Deleter. Directories left empty are removed too, up to the store's root,
// so that pruning does not leave one empty directory per deleted version behind.
func (s *FS) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: delete %s: %w", key, err)
	}
	for dir := filepath.Dir(p); ; dir = filepath.Dir(dir) {
		rel, err := filepath.Rel(s.root, dir)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") || os.Remove(dir) != nil {
			break // not empty (or already gone): the rest of the path is in use
		}
	}
	return nil
}
