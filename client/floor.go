package client

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// versionFloor is the newest version a device has accepted of one kind of signed document
// (privacy policies, key epochs), with the fingerprint of the root role whose keys signed it,
// and, once persisted, the file that keeps both across restarts. A root that names other keys
// for the role resets it: a thief of the retired keys, having had devices accept a version
// numbered 2^40, would otherwise keep them from the organisation's next for good.
type versionFloor struct {
	version uint64
	role    string // "" while version is 0 and nothing was accepted
	path    string // "" when not persisted
}

// persistTo reads the floor recorded in path (none if the file is missing), and records each
// raise there from now on.
func (f *versionFloor) persistTo(path string) error {
	v, role, err := readFloor(path)
	if err != nil {
		return err
	}
	f.version, f.role, f.path = v, role, path
	return nil
}

// under resets the floor if it was set under other keys than role names, and reports whether
// it did: what those keys signed bounds nothing.
func (f *versionFloor) under(role string) bool {
	if f.role == "" || f.role == role {
		return false
	}
	f.version = 0
	return true
}

// raise records that version was accepted under role, durably first when persisted.
func (f *versionFloor) raise(version uint64, role string) error {
	if (version > f.version || role != f.role) && f.path != "" {
		if err := writeFloor(f.path, version, role); err != nil {
			return err
		}
	}
	f.version, f.role = max(f.version, version), role
	return nil
}

// readFloor reads a floor file: a version and the fingerprint of the role it was set under
// (0 and "" if the file is missing).
func readFloor(path string) (uint64, string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", err
	}
	f := strings.Fields(string(data))
	if len(data) > 128 || len(f) != 2 {
		return 0, "", fmt.Errorf("%s: want a version and the role it was set under, got %q", path, data)
	}
	v, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("%s: not a version number: %q", path, f[0])
	}
	// A role cut short or altered would silently reset the floor, as a root rotation does.
	if b, err := hex.DecodeString(f[1]); err != nil || len(b) != 16 {
		return 0, "", fmt.Errorf("%s: the role's fingerprint is not 32 hex digits: %q", path, f[1])
	}
	return v, f[1], nil
}

// writeFloor records v, set under role, in path.
func writeFloor(path string, v uint64, role string) error {
	return atomicfile.Write(path, fmt.Appendf(nil, "%d %s\n", v, role), 0o600)
}
