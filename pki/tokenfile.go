package pki

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

const tokenFileVersion = 1

// tokenRecord is what the token file keeps of one token: never the token, only its hash.
type tokenRecord struct {
	Hash     string     `json:"hash"` // lowercase hex SHA-256 of the token's 32 random bytes
	DeviceID string     `json:"device_id"`
	Issued   time.Time  `json:"issued"`
	Expires  time.Time  `json:"expires"`
	Redeemed *time.Time `json:"redeemed,omitempty"`
}

type tokenFile struct {
	Version int           `json:"version"`
	Tokens  []tokenRecord `json:"tokens"`
}

// tokenHash decodes a token as it arrives from the network (unpadded base64url of TokenBytes
// bytes, nothing else) and returns the hex SHA-256 it is filed under.
func tokenHash(token string) (string, error) {
	if len(token) != base64.RawURLEncoding.EncodedLen(TokenBytes) {
		return "", fmt.Errorf("%w: a token is %d characters, got %d", ErrTokenUnknown, base64.RawURLEncoding.EncodedLen(TokenBytes), len(token))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != TokenBytes {
		return "", fmt.Errorf("%w: not unpadded base64url", ErrTokenUnknown)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}

// decodeTokenFile parses the token file strictly: one JSON object of the known version with no
// unknown fields and no trailing data, at most MaxTokens well-formed records with distinct
// hashes.
func decodeTokenFile(data []byte) ([]tokenRecord, error) {
	if len(data) > MaxTokenFileBytes {
		return nil, fmt.Errorf("token file is %d bytes, the limit is %d", len(data), MaxTokenFileBytes)
	}
	var f tokenFile
	if err := decodeStrictJSON(data, &f); err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	if f.Version != tokenFileVersion {
		return nil, fmt.Errorf("token file: version %d, want %d", f.Version, tokenFileVersion)
	}
	if err := checkTokenRecords(f.Tokens); err != nil {
		return nil, err
	}
	return f.Tokens, nil
}

// checkTokenRecords checks the records of a token file: at most MaxTokens, each well-formed,
// with distinct hashes.
func checkTokenRecords(recs []tokenRecord) error {
	if len(recs) > MaxTokens {
		return fmt.Errorf("token file: %d tokens, the limit is %d", len(recs), MaxTokens)
	}
	seen := make(map[string]bool, len(recs))
	for i, r := range recs {
		if err := r.validate(); err != nil {
			return fmt.Errorf("token file: record %d: %w", i, err)
		}
		if seen[r.Hash] {
			return fmt.Errorf("token file: record %d: duplicate hash", i)
		}
		seen[r.Hash] = true
	}
	return nil
}

func (r tokenRecord) validate() error {
	if len(r.Hash) != 2*sha256.Size {
		return fmt.Errorf("hash is %d characters, want %d", len(r.Hash), 2*sha256.Size)
	}
	if _, err := hex.DecodeString(r.Hash); err != nil || r.Hash != lowerHex(r.Hash) {
		return errors.New("hash is not lowercase hex")
	}
	if err := vigilv1.ValidID("device_id", r.DeviceID); err != nil {
		return err
	}
	if r.Issued.IsZero() || !r.Expires.After(r.Issued) || r.Expires.Sub(r.Issued) > MaxTokenTTL {
		return fmt.Errorf("lifetime %s to %s is not within (0, %v]", r.Issued.Format(time.RFC3339), r.Expires.Format(time.RFC3339), MaxTokenTTL)
	}
	// When a token was redeemed is not checked: whatever time it shows, the token is used.
	// Tokens.Redeem files a time within the lifetime, but earlier versions filed the
	// redeeming host's clock as it was, before the issue if that clock had been stepped back;
	// refusing the file for it would stop every registration and `vigil enrol token` until the
	// file was edited by hand, and reading such a record as unused would let its token be
	// redeemed again.
	return nil
}

func lowerHex(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func encodeTokenFile(records []tokenRecord) ([]byte, error) {
	if records == nil {
		records = []tokenRecord{}
	}
	data, err := json.MarshalIndent(tokenFile{Version: tokenFileVersion, Tokens: records}, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("pki: encode the token file: %w", err) // times past year 9999
	}
	return append(data, '\n'), nil
}

// decodeStrictJSON decodes exactly one JSON value into v, refusing unknown fields and anything
// after the value but white space.
func decodeStrictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}
