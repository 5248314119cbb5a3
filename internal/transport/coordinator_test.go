package transport_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// taskService is the smallest coordinator: GetTask answers the device that calls it.
type taskService struct {
	vigilv1.UnimplementedCoordinatorServer
}

func (s *taskService) Register(g *grpc.Server) { vigilv1.RegisterCoordinatorServer(g, s) }

func (s *taskService) GetTask(ctx context.Context, r *vigilv1.GetTaskRequest) (*vigilv1.GetTaskResponse, error) {
	if err := pki.RequireDevice(ctx, r.GetDeviceId()); err != nil {
		return nil, err
	}
	return &vigilv1.GetTaskResponse{}, nil
}

// org is a CA, a revocation list and a coordinator serving taskService on loopback.
type org struct {
	ca   *pki.CA
	revs *pki.Revocations
	addr string
}

func newOrg(t *testing.T, conns pki.ListenerConfig) *org {
	t.Helper()
	o := newPKI(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := transport.ServeCoordinator(lis, &taskService{}, o.issue(t, pki.Coordinator("coord"), "127.0.0.1"), o.ca.Pool(), o.revs, 50, conns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(time.Second) })
	o.addr = lis.Addr().String()
	return o
}

// newPKI is an org's CA and revocation list, with no server.
func newPKI(t *testing.T) *org {
	t.Helper()
	ca, err := pki.NewCA("Vigil test CA", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	revs, err := pki.OpenRevocations(filepath.Join(t.TempDir(), "revoked.json"))
	if err != nil {
		t.Fatal(err)
	}
	return &org{ca: ca, revs: revs}
}

func (o *org) issue(t *testing.T, id pki.Identity, hosts ...string) tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := o.ca.Issue(pki.CertSpec{Identity: id, PublicKey: key.Public(), Hosts: hosts}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return pki.Credentials{Key: key, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{o.ca.Certificate()}}.TLSCertificate()
}

// getTask calls GetTask as deviceID over a new connection with cert, failing fast rather than
// waiting for a connection the server will not keep.
func (o *org) getTask(t *testing.T, cert tls.Certificate, deviceID string) error {
	t.Helper()
	conn, err := transport.DialCoordinator(o.addr, pki.ClientTLS(&cert, o.ca.Pool(), pki.Coordinator("")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = vigilv1.NewCoordinatorClient(conn).GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: deviceID})
	return err
}

// TestAttackCertificateLocksDevicesOut: a certificate from the organisation's CA that the
// devices' server will never serve (a revoked device's, a trustee's) or one device's
// certificate opens twice as many connections as there are authenticated slots and holds them
// idle, making no call. A device must still be served, and the attacker's own calls are still
// told why they are refused.
func TestAttackCertificateLocksDevicesOut(t *testing.T) {
	const slots = 16
	for _, tc := range []struct {
		name     string
		attacker pki.Identity
		revoke   bool
		code     codes.Code // of the attacker's own GetTask
		reason   string
	}{
		{"revoked device", pki.Device("mallory"), true, codes.Unauthenticated, pki.ReasonRevoked},
		{"trustee", pki.Trustee("t1"), false, codes.PermissionDenied, pki.ReasonWrongRole},
		{"one device", pki.Device("mallory"), false, codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOrg(t, pki.ListenerConfig{MaxAuthenticated: slots})
			alice, mallory := o.issue(t, pki.Device("alice")), o.issue(t, tc.attacker)
			if tc.revoke {
				if err := o.revs.RevokeIdentity(tc.attacker, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			err := o.getTask(t, mallory, tc.attacker.ID)
			if status.Code(err) != tc.code || vigilv1.Reason(err) != tc.reason {
				t.Fatalf("the attacker's own call: %v, want code %v reason %q", err, tc.code, tc.reason)
			}
			// The attack: connections with a completed handshake, then silence.
			for range 2 * slots {
				c, err := tls.Dial("tcp", o.addr, pki.ClientTLS(&mallory, o.ca.Pool(), pki.Coordinator("")))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
			}
			time.Sleep(300 * time.Millisecond) // the server completes its side of the handshakes
			if err := o.getTask(t, alice, "alice"); err != nil {
				t.Fatalf("a device after %d idle connections of %s: %v", 2*slots, tc.attacker, err)
			}
		})
	}
}
