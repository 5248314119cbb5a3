package client

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Enrol obtains the device's certificate with its one-time token: it makes an identity key and
// a certificate request, sends them with the token, and accepts the certificate only if it
// names this device and chains to a CA the device was given beforehand (bootstrap). api must be
// a connection that trusts the coordinator through bootstrap and presents no client certificate;
// afterwards the device reconnects presenting the returned credentials.
func Enrol(ctx context.Context, api vigilv1.CoordinatorClient, deviceID, region, token string, bootstrap []*x509.Certificate, now time.Time) (pki.Credentials, error) {
	key, err := pki.GenerateKey()
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: %w", err)
	}
	csr, err := pki.CreateCSR(key, deviceID)
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: %w", err)
	}
	resp, err := api.Enroll(ctx, &vigilv1.EnrollRequest{
		DeviceId: deviceID, Region: region, EnrollmentToken: token, CertificateRequest: csr,
	})
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: enrol %s: %w", deviceID, err)
	}
	creds, err := pki.AcceptEnrolment(key, resp.GetCertificate(), resp.GetCaCertificates(), bootstrap, pki.Device(deviceID), now)
	if err != nil {
		return pki.Credentials{}, fmt.Errorf("client: enrol %s: %w", deviceID, err)
	}
	return creds, nil
}
