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
