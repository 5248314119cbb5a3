package pki

import (
	"encoding/json"
	"fmt"
	"math/big"
	"time"
)

const revocationFileVersion = 1

// revocationFile is the persisted revocation list.
type revocationFile struct {
	Version    int               `json:"version"`
	Identities []RevokedIdentity `json:"identities"`
	Serials    []RevokedSerial   `json:"serials"`
}

// RevokedIdentity says that every certificate of Identity issued up to Revoked, and every
// enrolment token for it issued up to then, is refused (the token by Enroller.Enroll, through
// the issue time of the device record it was redeemed for).
type RevokedIdentity struct {
	Identity Identity  `json:"identity"`
	Revoked  time.Time `json:"revoked"`
}

// RevokedSerial says that the certificate with this serial number is refused.
type RevokedSerial struct {
	Serial  *big.Int  `json:"serial"`
	Revoked time.Time `json:"revoked"`
}

// MarshalText encodes an Identity as its URI.
func (id Identity) MarshalText() ([]byte, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	return []byte(id.String()), nil
}

// UnmarshalText decodes an Identity from its URI, strictly.
func (id *Identity) UnmarshalText(b []byte) error {
	v, err := ParseIdentity(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// serialKey is the canonical text of a serial number: lowercase hex without leading zeros.
func serialKey(n *big.Int) string { return n.Text(16) }

// ParseSerial parses a certificate serial number written as hex (as `vigil pki show` prints
// it), with or without colons between bytes.
func ParseSerial(s string) (*big.Int, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			clean = append(clean, s[i])
		}
	}
	if len(clean) == 0 || len(clean) > 40 {
		return nil, fmt.Errorf("pki: serial %q is not 1 to 40 hex digits", s)
	}
	n, ok := new(big.Int).SetString(string(clean), 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("pki: serial %q is not a positive hex number", s)
	}
	return n, nil
}

// decodeRevocationFile parses the revocation file strictly: one JSON object of the known version,
// no unknown fields or trailing data, at most MaxRevocations valid entries, no duplicates.
func decodeRevocationFile(data []byte) (revocationFile, error) {
	if len(data) > MaxRevocationFileBytes {
		return revocationFile{}, fmt.Errorf("revocation file is %d bytes, the limit is %d", len(data), MaxRevocationFileBytes)
	}
	var f revocationFile
	if err := decodeStrictJSON(data, &f); err != nil {
		return revocationFile{}, fmt.Errorf("revocation file: %w", err)
	}
	if f.Version != revocationFileVersion {
		return revocationFile{}, fmt.Errorf("revocation file: version %d, want %d", f.Version, revocationFileVersion)
	}
	if n := len(f.Identities) + len(f.Serials); n > MaxRevocations {
		return revocationFile{}, fmt.Errorf("revocation file: %d entries, the limit is %d", n, MaxRevocations)
	}
	ids := make(map[Identity]bool, len(f.Identities))
	for i, e := range f.Identities {
		if err := e.Identity.Validate(); err != nil {
			return revocationFile{}, fmt.Errorf("revocation file: identity %d: %w", i, err)
		}
		if e.Revoked.IsZero() || ids[e.Identity] {
			return revocationFile{}, fmt.Errorf("revocation file: identity %d (%s): missing time or duplicate", i, e.Identity)
		}
		ids[e.Identity] = true
	}
	serials := make(map[string]bool, len(f.Serials))
	for i, e := range f.Serials {
		if e.Serial == nil || e.Serial.Sign() <= 0 || e.Serial.BitLen() > 160 {
			return revocationFile{}, fmt.Errorf("revocation file: serial %d is not a positive number of at most 20 bytes", i)
		}
		k := serialKey(e.Serial)
		if e.Revoked.IsZero() || serials[k] {
			return revocationFile{}, fmt.Errorf("revocation file: serial %d (%s): missing time or duplicate", i, k)
		}
		serials[k] = true
	}
	return f, nil
}

func encodeRevocationFile(f revocationFile) ([]byte, error) {
	f.Version = revocationFileVersion
	if f.Identities == nil {
		f.Identities = []RevokedIdentity{}
	}
	if f.Serials == nil {
		f.Serials = []RevokedSerial{}
	}
	data, err := json.MarshalIndent(f, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("pki: encode the revocation file: %w", err)
	}
	return append(data, '\n'), nil
}
