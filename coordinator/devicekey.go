package coordinator

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/release"
)

// recordFields is what the coordinator reads of a device record it verified at enrolment and
// kept. Decoding a kept record in full (release.DecodeUnverified: strict JSON decoded, encoded
// again to check its form, and the key expanded) takes about 0.4 ms, and a parsed key holds
// 44 kB (BenchmarkScaleMemory): for a million devices, minutes at every restart and 44 GB of
// memory. So the registry keeps only the record's bytes, and reads these fields when needed.
type recordFields struct {
	DeviceID   string    `json:"device_id"`
	Issued     time.Time `json:"issued"`
	Expires    time.Time `json:"expires"`
	SigningKey []byte    `json:"signing_key"`
}

// MinRecordValidity is how long a device's record must still be valid for its update to be
// taken. The trustees check every record again when they open the round's sum, after the
// round's deadline: an update from a record that has expired by then makes them refuse the
// whole round, after it has been charged. Rounds are expected to close and open within it.
const MinRecordValidity = 24 * time.Hour

var errNoRecord = errors.New("no device record")

// decodeRecordFields reads the fields of a device record without verifying its signature
// again: the record was verified when the device enrolled.
func decodeRecordFields(record []byte) (recordFields, error) {
	var env struct {
		Payload     []byte `json:"payload"`
		PayloadType string `json:"payloadType"`
	}
	if err := json.Unmarshal(record, &env); err != nil {
		return recordFields{}, fmt.Errorf("device record: %w", err)
	}
	if env.PayloadType != release.TypeDeviceRecord {
		return recordFields{}, fmt.Errorf("device record: payload type %q", env.PayloadType)
	}
	var f recordFields
	if err := json.Unmarshal(env.Payload, &f); err != nil {
		return recordFields{}, fmt.Errorf("device record: %w", err)
	}
	return f, nil
}

// signingKey returns the key that signs the device's updates, parsed from its record on each
// use (about 0.3 ms of CPU, beside 8.4 ms to take an update) rather than kept parsed, and when
// the record expires.
func (d device) signingKey() (*sig.PublicKey, time.Time, error) {
	if len(d.record) == 0 {
		return nil, time.Time{}, errNoRecord
	}
	f, err := decodeRecordFields(d.record)
	if err != nil {
		return nil, time.Time{}, err
	}
	key, err := sig.ParsePublicKey(f.SigningKey)
	return key, f.Expires, err
}
