package pki_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// coordinator is the part of a Coordinator service that pki touches. Vigil's coordinator takes
// a device's authorisation to enrol from a device record the enrolment authority signed
// (package enrolment); here the operator lists the devices that may enrol.
type coordinator struct {
	vigilv1.UnimplementedCoordinatorServer
	enroller *pki.Enroller
	allowed  map[string]time.Time // device ID -> when it was allowed to enrol
}

func (c *coordinator) Enroll(ctx context.Context, req *vigilv1.EnrollRequest) (*vigilv1.EnrollResponse, error) {
	at, ok := c.allowed[req.GetDeviceId()]
	if !ok {
		return nil, status.Error(codes.PermissionDenied, "this device may not enrol")
	}
	iss, err := c.enroller.Enroll(req.GetDeviceId(), at, req.GetCertificateRequest(), time.Now())
	if err != nil {
		return nil, pki.StatusError(err)
	}
	return &vigilv1.EnrollResponse{Certificate: iss.Certificate, CaCertificates: iss.CACertificates}, nil
}

func (c *coordinator) GetTask(ctx context.Context, req *vigilv1.GetTaskRequest) (*vigilv1.GetTaskResponse, error) {
	if err := pki.RequireDevice(ctx, req.GetDeviceId()); err != nil {
		return nil, err
	}
	return &vigilv1.GetTaskResponse{RetryAfterMillis: 1000}, nil
}

// Example shows the whole life of a device identity: the operator initialises the PKI and
// issues a token, the coordinator serves mutual TLS behind the guard, the device enrols without
// a certificate and then calls with one, and a revocation refuses its next call.
func Example() {
	tmp, _ := os.MkdirTemp("", "vigil-pki-example")
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "pki")

	// Operator: `vigil pki init`; the device is allowed to enrol.
	auth, err := pki.InitAuthority(dir, "Vigil CA", "coordinator", []string{"127.0.0.1"}, 0, 0, time.Now())
	if err != nil {
		log.Fatal(err)
	}

	// Coordinator.
	coordCreds, _ := auth.CoordinatorCredentials()
	guard, _ := pki.NewGuard(pki.GuardConfig{
		Roles:           []pki.Role{pki.RoleDevice},
		Unauthenticated: []string{vigilv1.Coordinator_Enroll_FullMethodName},
		Revocations:     auth.Revocations,
	})
	enroller, _ := pki.NewEnroller(pki.EnrollerConfig{CA: auth.CA, Revocations: auth.Revocations})
	srv := grpc.NewServer(append(guard.ServerOptions(),
		grpc.Creds(credentials.NewTLS(pki.ServerTLS(coordCreds.TLSCertificate(), auth.CA.Pool()))),
		grpc.MaxRecvMsgSize(vigilv1.MaxMessageBytes))...)
	vigilv1.RegisterCoordinatorServer(srv, &coordinator{enroller: enroller, allowed: map[string]time.Time{"laptop-7": time.Now()}})
	lis, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(lis)
	defer srv.Stop()

	// Device, before enrolment: it trusts the CA certificate it was given.
	bootstrap, _ := pki.ReadCertificates(filepath.Join(dir, pki.CACertFile))
	roots := pki.Credentials{Roots: bootstrap}.RootPool()
	dial := func(creds *pki.Credentials) vigilv1.CoordinatorClient {
		var cert *tls.Certificate
		if creds != nil {
			c := creds.TLSCertificate()
			cert = &c
		}
		conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(
			credentials.NewTLS(pki.ClientTLS(cert, roots, pki.Coordinator("")))))
		return vigilv1.NewCoordinatorClient(conn)
	}
	ctx := context.Background()
	key, _ := pki.GenerateKey()
	csr, _ := pki.CreateCSR(key, "laptop-7")
	resp, err := dial(nil).Enroll(ctx, &vigilv1.EnrollRequest{DeviceId: "laptop-7", CertificateRequest: csr})
	if err != nil {
		log.Fatal(err)
	}
	creds, err := pki.AcceptEnrolment(key, resp.GetCertificate(), resp.GetCaCertificates(), bootstrap, pki.Device("laptop-7"), time.Now())
	if err != nil {
		log.Fatal(err)
	}
	pki.SaveCredentials(filepath.Join(tmp, "device"), creds)
	id, _ := creds.Identity()
	fmt.Println("enrolled as", id)

	// Device, enrolled: every call carries its certificate.
	client := dial(&creds)
	_, err = client.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "laptop-7"})
	fmt.Println("GetTask as laptop-7:", err == nil)
	_, err = client.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "laptop-8"})
	fmt.Println("GetTask claiming laptop-8:", pki.Reason(err))

	// Operator: `vigil pki revoke -device-id laptop-7`.
	auth.Revocations.RevokeIdentity(pki.Device("laptop-7"), time.Now())
	_, err = client.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "laptop-7"})
	fmt.Println("GetTask after revocation:", pki.Reason(err))
	// Output:
	// enrolled as spiffe://vigil/device/laptop-7
	// GetTask as laptop-7: true
	// GetTask claiming laptop-8: IDENTITY_MISMATCH
	// GetTask after revocation: REVOKED
}
