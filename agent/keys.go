package agent

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/internal/atomicfile"
)

// Files of an agent's directory.
const (
	// SecretFile holds the install secret (hex) applications present as a bearer token.
	SecretFile = "secret"
	// DeviceKeyFile holds the 32-byte key the state file is encrypted under.
	DeviceKeyFile = "device.key"
	// StateFile is the encrypted state: enrolments, baselines, session history.
	StateFile = "state.vgl"
	// AuditKeyFile holds the seed of the ML-DSA-65 key that signs the audit log, and
	// AuditPubFile its public key (base64), for `vigil audit verify --key`.
	AuditKeyFile = "audit.key"
	AuditPubFile = "audit.pub"
	// AuditLogFile is the decision log; AuditHeadFile the newest signed head and
	// AuditHeadsFile every head exported (one JSON per line).
	AuditLogFile   = "audit.log"
	AuditHeadFile  = "audit-head.json"
	AuditHeadsFile = "audit-heads.jsonl"
)

// secretBytes is the size of the install secret and of session tokens.
const secretBytes = 32

// stateFiles are files an agent's directory holds only once an agent has started in it, after
// it made its keys: the state sealed under the device key, the log signed with the audit key
// and its public key.
var stateFiles = []string{StateFile, AuditLogFile, AuditPubFile, AuditHeadFile, AuditHeadsFile}

// heldState returns the first of stateFiles that dir holds, or "" for a directory no agent
// has started in.
func heldState(dir string) (string, error) {
	for _, name := range stateFiles {
		_, err := os.Lstat(filepath.Join(dir, name))
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("agent: %w", err)
		}
	}
	return "", nil
}

// loadOrCreate returns the content of the owner-only file dir/name, creating it with
// create() if absent. An existing file readable by others is refused: a key that may have
// leaked is not a key. With held, the name of a state file dir holds (heldState), an absent
// key is refused, naming it: the state was made under the key, and a new one would neither
// open it nor leave it as it was.
func loadOrCreate(dir, name, held string, create func() ([]byte, error)) ([]byte, error) {
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && held != "" {
		return nil, fmt.Errorf("%w: %s is missing, though %s holds an agent's state (%s), made under it: restore the key from a backup "+
			"(a new one would not open that state), or move the directory away to start afresh", ErrState, path, dir, held)
	}
	if errors.Is(err, fs.ErrNotExist) {
		data, err := create()
		if err != nil {
			return nil, err
		}
		if err := atomicfile.Create(path, data, 0o600); err != nil {
			return nil, fmt.Errorf("agent: %s: %w", name, err)
		}
		return data, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w", name, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; it must be readable by its owner only (chmod 600)", ErrState, path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent: %s: %w", name, err)
	}
	return data, nil
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("agent: random: %w", err)
	}
	return b, nil
}

// loadSecret returns the install secret, creating it on first start.
func loadSecret(dir string) (string, error) {
	data, err := loadOrCreate(dir, SecretFile, "", func() ([]byte, error) { // applications read it again
		b, err := randomBytes(secretBytes)
		return []byte(hex.EncodeToString(b) + "\n"), err
	})
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(data))
	if len(s) != 2*secretBytes {
		return "", fmt.Errorf("%w: %s holds %d characters, want %d hex digits", ErrState, SecretFile, len(s), 2*secretBytes)
	}
	return s, nil
}

// ReadSecret reads the install secret of the agent whose directory is dir, for applications
// and tests on the same device.
func ReadSecret(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, SecretFile))
	if err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}

// loadDeviceKey returns the key the state is encrypted under, creating it on first start (held
// empty, heldState's).
func loadDeviceKey(dir, held string) ([]byte, error) {
	key, err := loadOrCreate(dir, DeviceKeyFile, held, func() ([]byte, error) { return randomBytes(32) })
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: %s holds %d bytes, want 32", ErrState, DeviceKeyFile, len(key))
	}
	return key, nil
}

// loadAuditSigner returns the audit log's signing key, creating it (and its public key file)
// on first start (held empty, heldState's). A public key file that is not the key's is refused,
// not replaced: it is what verifies the log signed so far.
func loadAuditSigner(dir, held string) (*audit.MLDSA65Signer, error) {
	seed, err := loadOrCreate(dir, AuditKeyFile, held, func() ([]byte, error) { return randomBytes(32) })
	if err != nil {
		return nil, err
	}
	s, err := audit.NewMLDSA65Signer(seed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, AuditKeyFile, err)
	}
	pub := base64.StdEncoding.EncodeToString(s.Public().PublicKey()) + "\n"
	path := filepath.Join(dir, AuditPubFile)
	old, err := os.ReadFile(path)
	switch {
	case err == nil && strings.TrimSpace(string(old)) == strings.TrimSpace(pub):
		return s, nil
	case err == nil:
		return nil, fmt.Errorf("%w: %s is not the public key of %s: the log may have been signed with another key; "+
			"restore the audit key that matches it, or move the directory away to start afresh", ErrState, path, filepath.Join(dir, AuditKeyFile))
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("agent: %s: %w", AuditPubFile, err)
	}
	if err := atomicfile.Write(path, []byte(pub), 0o644); err != nil {
		return nil, fmt.Errorf("agent: %s: %w", AuditPubFile, err)
	}
	return s, nil
}

// secretEqual compares a presented secret in constant time.
func secretEqual(presented, want string) bool {
	return len(presented) == len(want) && subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}
