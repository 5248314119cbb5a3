package dp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// Ledger file I/O: capped reads and crash-safe replacement.

// LedgerKeyPath returns where the MAC key of the ledger at path lives.
func LedgerKeyPath(path string) string { return path + ".key" }

// ReadLedger reads and validates the ledger file at path under its key at
// LedgerKeyPath(path), without binding it to a subject or budget (for
// reviewers' tools).
func ReadLedger(path string) (*LedgerSnapshot, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	key, err := readKey(LedgerKeyPath(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := DecodeLedger(data, key)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// readKey reads a ledger's MAC key; a missing or malformed key makes the
// ledger unverifiable, which is corruption, not a fresh start.
func readKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, corrupt("its MAC key %s is missing", path)
	}
	if err != nil {
		return nil, fmt.Errorf("dp: reading ledger key: %w", err)
	}
	if len(key) != LedgerKeySize {
		return nil, corrupt("MAC key %s has %d bytes, want %d", path, len(key), LedgerKeySize)
	}
	return key, nil
}

// loadOrCreateKey returns the key at path, creating a random one if there
// is none (a new ledger).
func loadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if err == nil || !errors.Is(err, ErrLedgerCorrupt) {
		return key, err
	}
	if _, serr := os.Stat(path); serr == nil {
		return nil, err // present but malformed: never overwrite it
	}
	key = make([]byte, LedgerKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dp: ledger key: %w", err)
	}
	if err := writeFileAtomic(path, key); err != nil {
		return nil, fmt.Errorf("dp: writing ledger key %s: %w", path, err)
	}
	return key, nil
}

// readCapped reads a ledger file of at most MaxLedgerBytes; a larger one is corrupt, and the
// error gives its size.
func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() && fi.Size() > MaxLedgerBytes {
		return nil, fmt.Errorf("%s: %w", path, corrupt("%d bytes, over the cap of %d", fi.Size(), MaxLedgerBytes))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxLedgerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("dp: reading ledger %s: %w", path, err)
	}
	if len(data) > MaxLedgerBytes { // not a regular file, or grown since: its size is unknown
		return nil, fmt.Errorf("%s: %w", path, corrupt("more than %d bytes, over the cap", MaxLedgerBytes))
	}
	return data, nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}
