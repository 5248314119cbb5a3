package transport

import (
	"crypto/tls"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Trustee returns a trustee's guard, which admits only the coordinator, and its
// connection policy: the coordinator keeps a connection per trustee and makes a few calls at a
// time on it.
func Trustee(revs *pki.Revocations) ([]grpc.ServerOption, error) {
	g, err := pki.NewGuard(pki.GuardConfig{Roles: []pki.Role{pki.RoleCoordinator}, Revocations: revs})
	if err != nil {
		return nil, err
	}
	// Only the contributions of CommitSum and CommitPart need trustee.MaxMessageBytes; the
	// other requests are refused beyond vigilv1.MaxRequestBytes.
	limits, err := pki.NewRequestLimits(pki.RequestLimitsConfig{MaxBytes: vigilv1.MaxRequestBytes, MaxInFlight: 64})
	if err != nil {
		return nil, err
	}
	return append(append(limits.ServerOptions(), g.ServerOptions()...), grpc.MaxConcurrentStreams(64),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMin, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: time.Hour, Time: time.Minute, Timeout: 20 * time.Second})), nil
}

// TrusteeListener returns the connections over lis a trustee serves: a completed mutual-TLS
// handshake (tlsConfig) with a certificate of the coordinator's role that revs does not revoke.
// Every other connection is closed once its handshake completes. Without the role and
// revocation check at the handshake, any certificate of the organisation's CA (every device
// has one) could hold the trustee's connection slots idle and keep the coordinator out, since
// the guard only refuses calls. conns sets the caps; its TLS, Roles and Revocations are set here.
func TrusteeListener(lis net.Listener, tlsConfig *tls.Config, revs *pki.Revocations, conns pki.ListenerConfig) (net.Listener, error) {
	conns.TLS, conns.Roles, conns.Revocations = tlsConfig, []pki.Role{pki.RoleCoordinator}, revs
	split, err := pki.NewSplit(lis, conns)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := split.Unauthenticated().Accept()
			if err != nil {
				return // the split is closed
			}
			c.Close()
		}
	}()
	return split.Authenticated(), nil
}
