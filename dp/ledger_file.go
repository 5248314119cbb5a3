package dp

import (
	"fmt"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"io"
	"os"
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
// old or the new content.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}
