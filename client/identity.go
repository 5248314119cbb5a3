package client

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/pki"
	"github.com/vigilauth/vigil/release"
)

// Files of a device's identity directory, besides its TLS credentials (pki.KeyFile,
// pki.CertFile, pki.RootsFile).
const (
	// SigningKeyFile is the device's ML-DSA-65 key (mode 0600), which signs its updates and
	// which its device record names.
	SigningKeyFile = "signing.key"
	// RecordFile is the device record the enrolment authority signed.
	RecordFile = "device-record.json"
	// UnverifiedRecordFile keeps a device record the enrolment authority issued that does not
	// verify under the device's pinned root, unused: the token is spent on it, and a run with
	// the root that verifies it makes it the device's record (ErrRecordUnverified).
	UnverifiedRecordFile = "device-record.unverified.json"
	// RevokedRecordPrefix, followed by the UTC time and ".json", names a device record the
	// coordinator refused as revoked, moved aside for the record (ErrRecordRevoked).
	RevokedRecordPrefix = "device-record.revoked-"
)

// Identity is what a device holds once enrolled: the key that signs its updates, the
// enrolment authority's record naming that key, and the TLS credentials the coordinator
// issued for its transport.
type Identity struct {
	DeviceID string
	// Region is where the device's data stays, as its record says.
	Region     string
	SigningKey *sig.PrivateKey
	// Record is the signed device record (a release envelope).
	Record []byte
	TLS    pki.Credentials
}

// LoadIdentity reads the identity a successful Enrol saved in dir. It returns an error
// wrapping fs.ErrNotExist if the device has not finished enrolling; Enrol resumes from what
// is there.
func LoadIdentity(dir string) (*Identity, error) {
	key, err := sig.ReadPrivateKeyFile(filepath.Join(dir, SigningKeyFile))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	record, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	rec, err := decodeRecord(record, key.Public())
	if err != nil {
		return nil, fmt.Errorf("client: %s: %w", filepath.Join(dir, RecordFile), err)
	}
	creds, err := pki.LoadCredentials(dir)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if id, err := creds.Identity(); err != nil || id != pki.Device(rec.DeviceID) {
		return nil, fmt.Errorf("client: %s: the TLS certificate names %v, the device record %q (%v)", dir, id, rec.DeviceID, err)
	}
	return &Identity{DeviceID: rec.DeviceID, Region: rec.Region, SigningKey: key, Record: record, TLS: creds}, nil
}

// signingKey returns the signing key kept in dir, creating it (mode 0600) if there is none: a
// device keeps one key across restarts, so a record issued for it stays usable. With dir
// empty the key lives in memory only.
func signingKey(dir string) (*sig.PrivateKey, error) {
	if dir == "" {
		return sig.GenerateKey(nil)
	}
	path := filepath.Join(dir, SigningKeyFile)
	key, err := sig.ReadPrivateKeyFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if key, err = sig.GenerateKey(nil); err != nil {
		return nil, err
	}
	if err := sig.WritePrivateKeyFile(path, key); err != nil {
		return nil, err
	}
	return key, nil
}

// savedRecord returns the device record kept in dir, or nil if there is none.
func savedRecord(dir string) ([]byte, error) {
	if dir == "" {
		return nil, nil
	}
	data, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

func saveRecord(dir string, record []byte) error {
	if dir == "" {
		return nil
	}
	return atomicfile.Write(filepath.Join(dir, RecordFile), record, 0o644)
}

// decodeRecord decodes a device record without checking its signature, which the coordinator
// and the trustees check, and checks that it names key.
func decodeRecord(data []byte, key *sig.PublicKey) (*release.DeviceRecord, error) {
	_, doc, err := release.DecodeUnverified(data)
	if err != nil {
		return nil, err
	}
	rec, ok := doc.(*release.DeviceRecord)
	if !ok {
		return nil, fmt.Errorf("not a device record")
	}
	if !rec.Key().Equal(key) {
		return nil, fmt.Errorf("the device record names key %s, this device holds %s", rec.Key().ID().Short(), key.ID().Short())
	}
	return rec, nil
}
