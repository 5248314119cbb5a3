package sig

import (
	"fmt"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// WritePrivateKeyFile writes k to a new file at path with mode 0600. It refuses to replace an
// existing file, so a key is never overwritten by accident.
func WritePrivateKeyFile(path string, k *PrivateKey) error {
	return writeNew(path, MarshalPrivateKey(k), 0o600)
}

// WritePublicKeyFile writes pk to a new file at path with mode 0644.
func WritePublicKeyFile(path string, pk *PublicKey) error {
	return writeNew(path, MarshalPublicKey(pk), 0o644)
}

// writeNew writes a file that must not exist yet, all or nothing: a crash mid-write never
// leaves a partial key file that would then block writing the key again.
func writeNew(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.Create(path, data, mode); err != nil {
		return fmt.Errorf("sig: %w", err)
	}
	return nil
}

// ReadPrivateKeyFile reads a private key file written by WritePrivateKeyFile. On Unix it
// refuses a file that group or others can read or write, as ssh does, because such a key may
// already be compromised. An encrypted key file is refused with ErrEncrypted; read it with
// ReadPrivateKeyFileWith.
func ReadPrivateKeyFile(path string) (*PrivateKey, error) {
	return ReadPrivateKeyFileWith(path, nil)
}

func checkKeyMode(path string, perm os.FileMode) error {
	if runtime.GOOS != "windows" && perm&0o077 != 0 {
		return fmt.Errorf("sig: private key %s has mode %04o; it must not be accessible to group or others (chmod 600)", path, perm)
	}
	return nil
}

// ReadPublicKeyFile reads a public key file written by WritePublicKeyFile.
func ReadPublicKeyFile(path string) (*PublicKey, error) {
	data, _, err := readSmall(path)
	if err != nil {
		return nil, err
	}
	pk, err := ParsePublicKeyPEM(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pk, nil
}

func readSmall(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("sig: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("sig: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("sig: %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxPEMBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("sig: read %s: %w", path, err)
	}
	if len(data) > maxPEMBytes {
		return nil, nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadKey, path, maxPEMBytes)
	}
	return data, info, nil
}
