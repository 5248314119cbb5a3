package dp

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Ledger file I/O: capped reads and crash-safe replacement.

// ReadLedger reads and validates the ledger file at path, without binding
// it to a subject or budget (for reviewers' tools).
func ReadLedger(path string) (*LedgerSnapshot, error) {
	data, err := readCapped(path)
	if err != nil {
		return nil, err
	}
	s, err := DecodeLedger(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

func readCapped(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxLedgerBytes+1))
	if err != nil {
		return nil, fmt.Errorf("dp: reading ledger %s: %w", path, err)
	}
	return data, nil
}

// writeFileAtomic replaces path with data so that a crash leaves either the
// old or the new content: write a temporary file in the same directory,
// fsync it, rename it over path, fsync the directory.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
