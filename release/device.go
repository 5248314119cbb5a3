package release

import (
	"fmt"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
)

// DeviceRecord is the enrolment authority's statement that a device exists, where its data
// must stay, and which ML-DSA-65 key signs its updates. Trustees count an update towards a
// round only when it is signed by the key of a record that verifies under the root's
// enrolment role, so the coordinator, which does not hold that role, cannot invent devices.
type DeviceRecord struct {
	DeviceID   string    `json:"device_id"`
	Expires    time.Time `json:"expires"`
	Issued     time.Time `json:"issued"`
	Region     string    `json:"region"`
	SigningKey []byte    `json:"signing_key"` // raw FIPS 204 ML-DSA-65 public key

	key *sig.PublicKey // parsed SigningKey, filled by validate
}

func (d *DeviceRecord) payloadType() string { return TypeDeviceRecord }

func (d *DeviceRecord) validate() error {
	if err := validName("device record device_id", d.DeviceID); err != nil {
		return err
	}
	if err := validName("device record region", d.Region); err != nil {
		return err
	}
	pk, err := sig.ParsePublicKey(d.SigningKey)
	if err != nil {
		return fmt.Errorf("%w: device record signing_key: %v", ErrMalformed, err)
	}
	d.key = pk
	if err := checkTime("device record issued", d.Issued); err != nil {
		return err
	}
	if err := checkTime("device record expires", d.Expires); err != nil {
		return err
	}
	if !d.Expires.After(d.Issued) {
		return fmt.Errorf("%w: device record expires before it is issued", ErrMalformed)
	}
	return nil
}

// NewDeviceRecord describes device in region with update-signing key key, valid from issued
// until expires.
func NewDeviceRecord(device, region string, key *sig.PublicKey, issued, expires time.Time) *DeviceRecord {
	return &DeviceRecord{
		DeviceID: device, Region: region, SigningKey: key.Bytes(),
		Issued: canonicalTime(issued), Expires: canonicalTime(expires), key: key,
	}
}

// Key returns the device's update-signing key.
func (d *DeviceRecord) Key() *sig.PublicKey { return d.key }

func decodeDeviceRecord(payload []byte) (*DeviceRecord, error) {
	var d DeviceRecord
	if err := unmarshalStrict(payload, &d, "device record"); err != nil {
		return nil, err
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// VerifyDeviceRecord checks that data is a device record signed by the root's enrolment role
// and valid at now, and returns it.
func (r *Root) VerifyDeviceRecord(data []byte, now time.Time) (*DeviceRecord, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	payload, err := r.verifyRole(env, RoleEnrolment, TypeDeviceRecord)
	if err != nil {
		return nil, fmt.Errorf("device record: %w", err)
	}
	d, err := decodeDeviceRecord(payload)
	if err != nil {
		return nil, err
	}
	if !now.Before(d.Expires) {
		return nil, fmt.Errorf("%w: device record of %s expired at %s", ErrExpired, d.DeviceID, d.Expires.Format(time.RFC3339))
	}
	return d, nil
}
