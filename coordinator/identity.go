package coordinator

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/enrolment"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// checkRecord verifies the device record an enrolment presents, when the coordinator has a
// root of trust: signed by the root's enrolment role and valid now, for the device and region
// enrolling, and presented by the holder of its key (the record proof over the device ID and
// the certificate request). It returns nil, nil without a root.
func (c *Coordinator) checkRecord(req *vigilv1.EnrollRequest, now time.Time) (*release.DeviceRecord, error) {
	if c.cfg.Root == nil {
		return nil, nil
	}
	if len(req.GetDeviceRecord()) == 0 {
		return nil, reject(codes.Unauthenticated, ReasonNoRecord,
			"enrolment needs a device record from the enrolment authority (register with it first) and the record proof")
	}
	rec, err := c.cfg.Root.VerifyDeviceRecord(req.GetDeviceRecord(), now)
	if err != nil {
		return nil, reject(codes.Unauthenticated, ReasonBadRecord, "device record: "+err.Error())
	}
	if rec.DeviceID != req.GetDeviceId() {
		return nil, reject(codes.PermissionDenied, ReasonRecordMismatch,
			fmt.Sprintf("the device record is for %q, the request enrols %q", rec.DeviceID, req.GetDeviceId()))
	}
	if r := req.GetRegion(); r != "" && r != rec.Region {
		return nil, reject(codes.PermissionDenied, ReasonRecordMismatch,
			fmt.Sprintf("the device record places %q in region %q, the request says %q", rec.DeviceID, rec.Region, r))
	}
	if len(req.GetRecordProof()) != sig.SignatureSize {
		return nil, reject(codes.Unauthenticated, ReasonBadRecordProof,
			fmt.Sprintf("record_proof is %d bytes, an ML-DSA-65 signature is %d", len(req.GetRecordProof()), sig.SignatureSize))
	}
	if err := enrolment.VerifyRecordProof(rec.Key(), req.GetDeviceId(), req.GetCertificateRequest(), req.GetRecordProof()); err != nil {
		return nil, reject(codes.Unauthenticated, ReasonBadRecordProof, err.Error())
	}
	return rec, nil
}

// certify handles the transport identity part of an enrolment when the coordinator issues
// device certificates. A caller without a certificate must bring a certificate request and a
// verified device record, which authorises the name; a caller with its device certificate
// either renews it (with a request) or only registers. It returns nil, nil when there is
// nothing to issue.
func (c *Coordinator) certify(ctx context.Context, req *vigilv1.EnrollRequest, rec *release.DeviceRecord, now time.Time) (*pki.Issued, error) {
	if c.cfg.Enroller == nil {
		return nil, nil
	}
	id, certified := pki.IdentityFromContext(ctx)
	if certified {
		if err := pki.RequireDevice(ctx, req.GetDeviceId()); err != nil {
			return nil, err
		}
		if len(req.GetCertificateRequest()) == 0 {
			return nil, nil
		}
		iss, err := c.cfg.Enroller.Renew(id, req.GetCertificateRequest(), now)
		if err != nil {
			return nil, pki.StatusError(err)
		}
		return &iss, nil
	}
	if len(req.GetCertificateRequest()) == 0 {
		return nil, reject(codes.Unauthenticated, ReasonInvalidArgument,
			"enrolment without a device certificate needs a certificate_request")
	}
	// Config.validate makes Root, and so rec, present whenever there is an Enroller.
	iss, err := c.cfg.Enroller.Enroll(req.GetDeviceId(), rec.Issued, req.GetCertificateRequest(), now)
	if err != nil {
		return nil, pki.StatusError(err)
	}
	return &iss, nil
}

// requireDevice refuses a call that does not come from the certificate of the device it names,
// when the coordinator issues device certificates.
func (c *Coordinator) requireDevice(ctx context.Context, deviceID string) error {
	if c.cfg.Enroller == nil {
		return nil
	}
	return pki.RequireDevice(ctx, deviceID)
}
