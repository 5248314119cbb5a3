package trustee

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/internal/atomicfile"
)

// maxFileBytes bounds what readFile reads: share files are about 130 KB; a journal holds one
// cached answer and one c1 sum, each up to 128 polynomials of 131,072 bytes (16.8 MB).
const maxFileBytes = 64 << 20

// File names inside a trustee directory.
const (
	ShareFile    = "share.key"    // the secret share (mode 0600)
	IdentityFile = "identity.key" // the ceremony identity (mode 0600)
	KeyEpochFile = "key-epoch.bin"
	JournalFile  = "journal.bin" // decisions that must survive restarts (mode 0600)
	// MarkerFile is written beside the share before the first journal entry: a trustee whose
	// journal is missing but whose marker exists refuses to start (FileJournal.Marker).
	MarkerFile = "journal.required"
)

// ErrInsecureFile reports a secret file that others than its owner may read or write.
var ErrInsecureFile = errors.New("trustee: secret file is accessible to others")

// WriteSecretFile writes data to path atomically with mode 0600: a temporary file in the same
// directory, fsync, rename, fsync of the directory. A crash leaves the old file or the new
// one, never a mixture.
func WriteSecretFile(path string, data []byte) error {
	return writeFileAtomic(path, data, 0o600)
}

// WritePublicFile is WriteSecretFile for public documents (mode 0644).
func WritePublicFile(path string, data []byte) error {
	return writeFileAtomic(path, data, 0o644)
}

func writeFileAtomic(path string, data []byte, mode fs.FileMode) error {
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("trustee: %w", err)
	}
	return nil
}

// ReadSecretFile reads a secret file, refusing one that group or others may access (like
// ssh does for private keys) and one larger than the package's limit.
func ReadSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 %s", ErrInsecureFile, path, perm, path)
	}
	return readLimited(f, path)
}

// ReadPublicFile reads a public document, with the same size limit.
func ReadPublicFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("trustee: %w", err)
	}
	defer f.Close()
	return readLimited(f, path)
}

func readLimited(r io.Reader, path string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("trustee: reading %s: %w", path, err)
	}
	if len(data) > maxFileBytes {
		return nil, fmt.Errorf("trustee: %s is larger than %d bytes", path, maxFileBytes)
	}
	return data, nil
}

// LoadShare reads and decodes a secret share file.
func LoadShare(p he.Params, path string) (*he.SecretShare, error) {
	data, err := ReadSecretFile(path)
	if err != nil {
		return nil, err
	}
	s, err := he.ParseSecretShare(p, data)
	if err != nil {
		return nil, fmt.Errorf("trustee: %s: %w", path, err)
	}
	return s, nil
}

// SaveShare writes a secret share file with mode 0600.
func SaveShare(path string, s *he.SecretShare) error {
	data, err := s.MarshalBinary()
	if err != nil {
		return err
	}
	return WriteSecretFile(path, data)
}

// LoadKeyEpoch reads and decodes a key-epoch document.
func LoadKeyEpoch(p he.Params, path string) (*he.KeyEpoch, error) {
	data, err := ReadPublicFile(path)
	if err != nil {
		return nil, err
	}
	k, err := he.ParseKeyEpoch(p, data)
	if err != nil {
		return nil, fmt.Errorf("trustee: %s: %w", path, err)
	}
	return k, nil
}
