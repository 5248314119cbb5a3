// Package store keeps named blobs (models, release manifests, key documents, audit checkpoints)
// behind one small interface, so that the coordinator and devices run the same way against the
// local filesystem (the embedded default) or against object storage in a region.
//
// Keys are slash-separated paths of letters, digits and "._-" (see ValidKey). Writes are atomic:
// a reader sees the old object or the new one, never a part of either.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MaxObjectBytes bounds what Get will read, so that a corrupt or hostile store cannot exhaust memory.
const MaxObjectBytes = 256 << 20

// Errors callers branch on.
var (
	ErrNotFound = errors.New("store: object not found")
	ErrExist    = errors.New("store: object already exists")
	ErrTooLarge = errors.New("store: object too large")
	ErrBadKey   = errors.New("store: invalid key")
	// ErrRetained means a delete was refused by object lock (retention, legal hold) or by the
	// credentials' policy: the object is still there and readable.
	ErrRetained = errors.New("store: object retained")
	// ErrDenied means the store refused the credentials the request was made with.
	ErrDenied = errors.New("store: access denied")
	// ErrNotRegular means a directory store holds something other than a regular file under a
	// key (a FIFO, a device, a directory), which it refuses to read.
	ErrNotRegular = errors.New("store: not a regular file")
)

// Store is a flat namespace of immutable-by-convention blobs.
type Store interface {
	// Get returns the object stored under key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put stores data under key atomically, replacing any previous object.
	Put(ctx context.Context, key string, data []byte) error
	// Create stores data under key atomically only if nothing is stored there yet;
	// otherwise it returns an error wrapping ErrExist and leaves the existing object untouched.
	Create(ctx context.Context, key string, data []byte) error
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// LimitedGetter is a Store that can refuse an object larger than a caller's limit before
// reading it, by the size the server reports, so that a hostile store cannot make a reader
// allocate more than the limit.
type LimitedGetter interface {
	// GetLimit is Get for an object of at most limit bytes; a larger one is an error wrapping
	// ErrTooLarge.
	GetLimit(ctx context.Context, key string, limit int64) ([]byte, error)
}

// VersionReader is a Store that keeps every version of an object (a versioned bucket). Readers
// of write-once objects use it: the version written first (and locked) is the object; a later
// plain PUT or DELETE by someone holding the bucket's credentials adds versions, which readers
// skip if they do not verify.
type VersionReader interface {
	// GetVersions returns up to max versions of key, oldest first, each of at most limit
	// bytes; delete markers are skipped. A key with no version is an error wrapping
	// ErrNotFound. A version larger than limit is skipped, not read. The listing of the
	// versions is bounded too, by MaxListingBytes and 1000 entries; a store
	// listing more is an error wrapping ErrTooLarge, or, when the key's versions came first,
	// only those are read.
	GetVersions(ctx context.Context, key string, limit int64, max int) ([][]byte, error)
}

// VersionWriter is a Store that can add a version to a write-once object, locked like the
// version Create writes. The release publisher uses it to put a genuine document after junk that
// someone else wrote first under the same key; readers skip the junk.
type VersionWriter interface {
	PutVersion(ctx context.Context, key string, data []byte) error
}

// Deleter is a Store that can delete objects. Retention (the coordinator's --keep-versions)
// uses it to drop model versions and releases no device needs any more.
type Deleter interface {
	// Delete removes key, and in a store that keeps versions every version of it. A key that
	// does not exist is not an error. A version that object lock or policy keeps is left in
	// place and the error wraps ErrRetained; the object then stays readable, since only
	// versions are removed, never hidden behind a delete marker.
	Delete(ctx context.Context, key string) error
}

// Delete removes key from st; a store that cannot delete returns an error wrapping
// errors.ErrUnsupported.
func Delete(ctx context.Context, st Store, key string) error {
	if d, ok := st.(Deleter); ok {
		return d.Delete(ctx, key)
	}
	return fmt.Errorf("store: %T cannot delete %s: %w", st, key, errors.ErrUnsupported)
}

// PutVersion adds data as a new, locked version of key when st keeps versions, and replaces the
// object otherwise.
func PutVersion(ctx context.Context, st Store, key string, data []byte) error {
	if vw, ok := st.(VersionWriter); ok {
		return vw.PutVersion(ctx, key, data)
	}
	return st.Put(ctx, key, data)
}

// GetLimit reads key from st, refusing an object larger than limit: before reading when st is
// a LimitedGetter, after reading otherwise (a local store is trusted not to be hostile).
func GetLimit(ctx context.Context, st Store, key string, limit int64) ([]byte, error) {
	if lg, ok := st.(LimitedGetter); ok {
		return lg.GetLimit(ctx, key, limit)
	}
	data, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrTooLarge, key, len(data), limit)
	}
	return data, nil
}

// GetVersions returns the versions of key in st, oldest first (see VersionReader); a store
// that keeps no history has one version, the object itself.
func GetVersions(ctx context.Context, st Store, key string, limit int64, max int) ([][]byte, error) {
	if vr, ok := st.(VersionReader); ok {
		return vr.GetVersions(ctx, key, limit, max)
	}
	data, err := GetLimit(ctx, st, key, limit)
	if err != nil {
		return nil, err
	}
	return [][]byte{data}, nil
}

// ValidKey reports whether key is a well-formed store key: non-empty slash-separated segments of
// ASCII letters, digits, '.', '_' and '-', none of them "." or "..", at most 512 bytes.
func ValidKey(key string) error {
	if key == "" || len(key) > 512 {
		return fmt.Errorf("%w: %q: length must be 1..512", ErrBadKey, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q: empty, '.' or '..' segment", ErrBadKey, key)
		}
		for _, r := range seg {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
				return fmt.Errorf("%w: %q: character %q not allowed", ErrBadKey, key, r)
			}
		}
	}
	return nil
}
