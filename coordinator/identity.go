package coordinator

import (
	"context"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// certify handles the identity part of an enrolment when the coordinator issues device
// certificates. A caller without a certificate must bring a one-time token and a certificate
// request and gets a certificate; a caller with its device certificate either renews it (with a
// request) or only registers. It returns nil, nil when there is nothing to issue.
func (c *Coordinator) certify(ctx context.Context, req *vigilv1.EnrollRequest) (*pki.Issued, error) {
	if c.cfg.Enroller == nil {
		return nil, nil
	}
	now := c.cfg.Now()
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
	if req.GetEnrollmentToken() == "" || len(req.GetCertificateRequest()) == 0 {
		return nil, reject(codes.Unauthenticated, ReasonInvalidArgument,
			"enrolment without a device certificate needs a one-time enrollment_token and a certificate_request")
	}
	iss, err := c.cfg.Enroller.Enroll(req.GetDeviceId(), req.GetEnrollmentToken(), req.GetCertificateRequest(), now)
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
