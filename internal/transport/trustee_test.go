package transport_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackCertificateLocksCoordinatorOut: a certificate of the organisation's CA that a
// trustee does not serve (any device's, another trustee's, a revoked coordinator's) opens
// twice as many connections as the trustee has slots and holds them idle. The coordinator must
// still reach the trustee, and the attacker's connections are closed, not parked.
func TestAttackCertificateLocksCoordinatorOut(t *testing.T) {
	const slots = 4
	for _, tc := range []struct {
		name     string
		attacker pki.Identity
		revoke   bool
	}{
		{"device", pki.Device("mallory"), false},
		{"another trustee", pki.Trustee("t2"), false},
		{"revoked coordinator", pki.Coordinator("old"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newPKI(t)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			tlsConfig := pki.ServerMutualTLS(o.issue(t, pki.Trustee("t1"), "127.0.0.1"), o.ca.Pool())
			served, err := transport.TrusteeListener(lis, tlsConfig, o.revs, pki.ListenerConfig{MaxAuthenticated: slots})
			if err != nil {
				t.Fatal(err)
			}
			opts, err := transport.Trustee(o.revs)
			if err != nil {
				t.Fatal(err)
			}
			srv := grpc.NewServer(append(opts, grpc.Creds(pki.Handshaken()))...)
			vigilv1.RegisterTrusteeServer(srv, vigilv1.UnimplementedTrusteeServer{})
			go srv.Serve(served)
			t.Cleanup(srv.Stop)

			mallory := o.issue(t, tc.attacker)
			if tc.revoke {
				if err := o.revs.RevokeIdentity(tc.attacker, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			var held []*tls.Conn
			for range 2 * slots {
				c, err := tls.Dial("tcp", lis.Addr().String(), pki.ClientTLS(&mallory, o.ca.Pool(), pki.Trustee("t1")))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				held = append(held, c)
			}
			for i, c := range held {
				c.SetReadDeadline(time.Now().Add(3 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
					t.Fatalf("the trustee kept %s's connection %d open (read: %v)", tc.attacker, i, err)
				}
			}

			coord := o.issue(t, pki.Coordinator("coord"))
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(&coord, o.ca.Pool(), pki.Trustee("t1")))))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Unimplemented: the call passed the listener and the guard and reached the service.
			if _, err := vigilv1.NewTrusteeClient(conn).Info(ctx, &vigilv1.TrusteeInfoRequest{}); status.Code(err) != codes.Unimplemented {
				t.Fatalf("the coordinator after %d idle connections of %s: %v", 2*slots, tc.attacker, err)
			}
		})
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
