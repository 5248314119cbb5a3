package pki

import (
	"errors"
	"fmt"
	"time"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// EnrollerConfig configures an Enroller.
type EnrollerConfig struct {
	CA          *CA
	Revocations *Revocations
	// Validity is the lifetime of device certificates; zero means DefaultDeviceValidity.
	Validity time.Duration
}

func (c *EnrollerConfig) validate() error {
	if c.CA == nil || c.Revocations == nil {
		return errors.New("pki: enroller needs a CA and a revocation list")
	}
	if c.Validity == 0 {
		c.Validity = DefaultDeviceValidity
	}
	return checkValidity(c.Validity)
}

// Enroller turns an enrolment (device ID, certificate request) into a device's TLS certificate.
// It is what the coordinator's Enroll handler calls once it has established that the requester
// may take the name: in Vigil, by a device record that the enrolment authority signed (package
// enrolment), a role the coordinator does not hold. The certificate is only a transport
// identity.
type Enroller struct {
	cfg EnrollerConfig
}

// NewEnroller returns an Enroller.
func NewEnroller(cfg EnrollerConfig) (*Enroller, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Enroller{cfg: cfg}, nil
}

// Issued is a certificate handed out at enrolment, in the form EnrollResponse carries.
type Issued struct {
	Certificate    []byte   // DER
	CACertificates [][]byte // DER
	Identity       Identity
	NotAfter       time.Time
}

// Enroll issues a certificate for deviceID on the request's key. The caller has checked that
// the requester may take the name deviceID, by an authorisation granted at authorised; an
// authorisation granted up to the device's last revocation is refused with ErrRevoked, so that
// re-enrolling a revoked device takes a new one. In Vigil, authorised is the device record's
// issue time, which the enrolment authority sets to when the record's token was issued, not
// when it was redeemed: a token handed out before the revocation then authorises nothing,
// however late it is used.
func (e *Enroller) Enroll(deviceID string, authorised time.Time, csrDER []byte, now time.Time) (Issued, error) {
	if err := vigilv1.ValidID("device_id", deviceID); err != nil {
		return Issued{}, fmt.Errorf("%w: %w", ErrBadIdentity, err)
	}
	id := Device(deviceID)
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return Issued{}, err
	}
	at, revoked, err := e.cfg.Revocations.RevokedAt(id, now)
	if err != nil {
		return Issued{}, err
	}
	if revoked && !authorised.After(at) {
		return Issued{}, fmt.Errorf("%w: %s was revoked at %s, after its enrolment was authorised at %s; enrol it anew",
			ErrRevoked, id, at.Format(time.RFC3339), authorised.Format(time.RFC3339))
	}
	spec := CertSpec{Identity: id, PublicKey: csr.PublicKey, Validity: e.cfg.Validity}
	if revoked {
		spec.StartAfter = at
	}
	cert, err := e.cfg.CA.Issue(spec, now)
	if err != nil {
		return Issued{}, err
	}
	return Issued{
		Certificate: cert.Raw, CACertificates: [][]byte{e.cfg.CA.Certificate().Raw},
		Identity: id, NotAfter: cert.NotAfter,
	}, nil
}

// Renew issues a fresh certificate for an already authenticated identity (taken from its
// verified, unrevoked client certificate, never from the request) on the request's key, so a
// device can replace its certificate before it expires without enrolling anew.
func (e *Enroller) Renew(id Identity, csrDER []byte, now time.Time) (Issued, error) {
	if err := id.Validate(); err != nil {
		return Issued{}, err
	}
	if id.Role != RoleDevice {
		return Issued{}, fmt.Errorf("%w: only devices renew through the coordinator, not %s", ErrBadIdentity, id)
	}
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return Issued{}, err
	}
	// The caller's certificate passed the revocation check, but a certificate backdated from
	// now might not: start after the last revocation.
	at, _, err := e.cfg.Revocations.RevokedAt(id, now)
	if err != nil {
		return Issued{}, err
	}
	cert, err := e.cfg.CA.Issue(CertSpec{Identity: id, PublicKey: csr.PublicKey, Validity: e.cfg.Validity, StartAfter: at}, now)
	if err != nil {
		return Issued{}, err
	}
	return Issued{
		Certificate: cert.Raw, CACertificates: [][]byte{e.cfg.CA.Certificate().Raw},
		Identity: id, NotAfter: cert.NotAfter,
	}, nil
}
