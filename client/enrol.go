package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/internal/atomicfile"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// Errors of Enrol that need the operator.
var (
	// ErrRecordUnverified reports a device record from the enrolment authority that does not
	// verify under the pinned root (EnrolConfig.Root): another organisation's root, or an old
	// one. The record is kept, never used, in UnverifiedRecordFile, and a later Enrol whose
	// root verifies it resumes from it without registering again.
	ErrRecordUnverified = errors.New("client: the device record does not verify")
	// ErrRecordRevoked reports that the coordinator refused the device record as revoked: the
	// device was revoked. The record is moved aside (RevokedRecordPrefix), so that a later
	// Enrol registers again with a new token.
	ErrRecordRevoked = errors.New("client: the device was revoked")
)

// EnrolConfig configures Enrol.
type EnrolConfig struct {
	// Dir keeps the identity (created with mode 0700), so that an interrupted enrolment resumes
	// and a restarted device keeps its keys. Empty keeps everything in memory (load tests).
	Dir      string
	DeviceID string
	// Region is where the device's data stays; the record names it. Required to register.
	Region string
	// Token is the one-time token from the enrolment authority (`vigil enrol token`), needed
	// only until the device holds its record.
	Token string
	// Authority is a connection to the enrolment authority over TLS that trusts the
	// authority's CA (pki.ClientTLS with pki.EnrolmentAuthority).
	Authority vigilv1.EnrolmentClient
	// Coordinator is a connection that trusts the coordinator through Bootstrap and presents no
	// client certificate; afterwards the device reconnects presenting Identity.TLS.
	Coordinator vigilv1.CoordinatorClient
	Bootstrap   []*x509.Certificate
	// Root, if set, is the device's pinned root of trust: the record received must verify
	// under its enrolment role.
	Root *release.Root
	// RootName names Root in errors, as "--root FILE"; empty: "the pinned root".
	RootName string
	// Now replaces the clock in tests.
	Now func() time.Time
}

// Enrol gives the device its identities, resuming from whatever Dir already holds:
//
//  1. an ML-DSA-65 signing key, generated on the device and saved before anything is sent;
//  2. a device record: the device registers with the enrolment authority (token, region,
//     public key and a proof that it holds the key) and checks that the record names it;
//  3. a TLS certificate: the device enrols with the coordinator presenting the record and a
//     proof over its certificate request, and accepts the certificate only if it names this
//     device and chains to a CA it was given beforehand (Bootstrap).
func Enrol(ctx context.Context, cfg EnrolConfig) (*Identity, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := vigilv1.ValidID("device ID", cfg.DeviceID); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if cfg.Dir != "" {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	key, err := signingKey(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("client: signing key: %w", err)
	}
	record, err := savedRecord(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if record == nil {
		if record, err = keptRecord(cfg, key); err != nil {
			return nil, err
		}
	}
	if record == nil {
		if record, err = register(ctx, cfg, key); err != nil {
			return nil, err
		}
		if err := saveRecord(cfg.Dir, record); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	rec, err := decodeRecord(record, key.Public())
	if err != nil {
		return nil, fmt.Errorf("client: device record: %w", err)
	}
	if rec.DeviceID != cfg.DeviceID || cfg.Region != "" && rec.Region != cfg.Region {
		return nil, fmt.Errorf("client: the device record is for %q in region %q, not %q in %q", rec.DeviceID, rec.Region, cfg.DeviceID, cfg.Region)
	}
	creds, err := certify(ctx, cfg, rec.Region, key, record)
	if vigilv1.Reason(err) == pki.ReasonRevoked {
		return nil, setAsideRevoked(cfg, err)
	}
	if err != nil {
		return nil, err
	}
	if cfg.Dir != "" {
		if err := pki.SaveCredentials(cfg.Dir, creds); err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	return &Identity{DeviceID: cfg.DeviceID, Region: rec.Region, SigningKey: key, Record: record, TLS: creds}, nil
}

// register redeems the token with the enrolment authority for a device record naming key.
func register(ctx context.Context, cfg EnrolConfig, key *sig.PrivateKey) ([]byte, error) {
	switch {
	case cfg.Authority == nil || cfg.Token == "":
		return nil, errors.New("client: the device has no device record yet: it needs the enrolment authority and a one-time token")
	case cfg.Region == "":
		return nil, errors.New("client: registering needs the device's region")
	}
	req := &vigilv1.RegisterRequest{DeviceId: cfg.DeviceID, Token: cfg.Token, Region: cfg.Region}
	if err := enrolment.SignRegistration(req, key); err != nil {
		return nil, err
	}
	resp, err := cfg.Authority.Register(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("client: register %s with the enrolment authority: %w", cfg.DeviceID, err)
	}
	record := resp.GetDeviceRecord()
	if cfg.Root != nil {
		if _, err := cfg.Root.VerifyDeviceRecord(record, cfg.Now()); err != nil {
			// The token is spent on this record: keep it, unused, for a run whose root
			// verifies it.
			if cfg.Dir == "" {
				return nil, fmt.Errorf("%w under %s (%w): the enrolment authority issued it", ErrRecordUnverified, cfg.rootName(), err)
			}
			path := filepath.Join(cfg.Dir, UnverifiedRecordFile)
			if serr := atomicfile.Write(path, record, 0o644); serr != nil {
				return nil, fmt.Errorf("%w under %s (%w), and the record the enrolment authority issued could not be kept: %w",
					ErrRecordUnverified, cfg.rootName(), err, serr)
			}
			return nil, fmt.Errorf("%w under %s (%w): the record the enrolment authority issued is kept, unused, in %s with the signing key it names; "+
				"run again with the root that verifies it (the organisation's current root.json), no new token needed", ErrRecordUnverified, cfg.rootName(), err, path)
		}
	}
	return record, nil
}

// keptRecord returns the record a registration left in UnverifiedRecordFile, once it
// verifies under cfg.Root, saving it as the device's record; nil if there is none. A kept
// record that does not verify is never used, and neither does the device register again
// while it is there: the token was spent on it.
func keptRecord(cfg EnrolConfig, key *sig.PrivateKey) ([]byte, error) {
	if cfg.Dir == "" {
		return nil, nil
	}
	path := filepath.Join(cfg.Dir, UnverifiedRecordFile)
	record, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	advice := "run with the root that verifies it (the organisation's current root.json), no new token needed; " +
		"to register anew instead, with a new token, move it aside"
	if cfg.Root == nil {
		return nil, fmt.Errorf("%w: %s holds the record the enrolment authority issued, unused until a pinned root verifies it; %s",
			ErrRecordUnverified, path, advice)
	}
	if _, err := cfg.Root.VerifyDeviceRecord(record, cfg.Now()); err != nil {
		return nil, fmt.Errorf("%w under %s (%w): %s holds the record the enrolment authority issued, unused; %s",
			ErrRecordUnverified, cfg.rootName(), err, path, advice)
	}
	if _, err := decodeRecord(record, key.Public()); err != nil {
		return nil, fmt.Errorf("client: %s: %w", path, err)
	}
	if err := saveRecord(cfg.Dir, record); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	return record, nil
}

// setAsideRevoked moves the device record the coordinator refused as revoked (refused) out of
// the way, keeping it as RevokedRecordPrefix and the time, so that the next run registers
// again with a new token instead of presenting it again.
func setAsideRevoked(cfg EnrolConfig, refused error) error {
	const why = "the coordinator refuses its device record (REVOKED): an operator must issue it a new token, after the revocation (vigil enrol token)"
	if cfg.Dir == "" {
		return fmt.Errorf("%w: %s: %w", ErrRecordRevoked, why, refused)
	}
	from := filepath.Join(cfg.Dir, RecordFile)
	to := filepath.Join(cfg.Dir, RevokedRecordPrefix+cfg.Now().UTC().Format("20060102T150405Z")+".json")
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("%w: %s; the refused record could not be moved aside (%v): move %s away before running with the new token: %w",
			ErrRecordRevoked, why, err, from, refused)
	}
	return fmt.Errorf("%w: %s; the refused record is kept as %s, and the next run with the new token registers again: %w", ErrRecordRevoked, why, to, refused)
}

func (cfg EnrolConfig) rootName() string {
	if cfg.RootName == "" {
		return "the pinned root"
	}
	return cfg.RootName
}

// certify enrols with the coordinator for a TLS certificate, presenting the device record.
func certify(ctx context.Context, cfg EnrolConfig, region string, key *sig.PrivateKey, record []byte) (pki.Credentials, error) {
	if cfg.Coordinator == nil {
		return pki.Credentials{}, errors.New("client: enrolling needs a connection to the coordinator")
	}
	tlsKey, err := pki.GenerateKey()
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: %w", err)
	}
	csr, err := pki.CreateCSR(tlsKey, cfg.DeviceID)
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: %w", err)
	}
	proof, err := enrolment.ProveRecord(key, cfg.DeviceID, csr)
	if err != nil {
		return pki.Credentials{}, err
	}
	resp, err := cfg.Coordinator.Enroll(ctx, &vigilv1.EnrollRequest{
		DeviceId: cfg.DeviceID, Region: region, CertificateRequest: csr, DeviceRecord: record, RecordProof: proof,
	})
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: enrol %s: %w", cfg.DeviceID, err)
	}
	creds, err := pki.AcceptEnrolment(tlsKey, resp.GetCertificate(), resp.GetCaCertificates(), cfg.Bootstrap, pki.Device(cfg.DeviceID), cfg.Now())
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: enrol %s: %w", cfg.DeviceID, err)
	}
	return creds, nil
}
