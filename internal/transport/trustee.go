package transport

import (
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
	// Only CommitSum's contributions need trustee.MaxMessageBytes; the other requests are
	// refused beyond vigilv1.MaxRequestBytes.
	limits, err := pki.NewRequestLimits(pki.RequestLimitsConfig{MaxBytes: vigilv1.MaxRequestBytes, MaxInFlight: 64})
	if err != nil {
		return nil, err
	}
	return append(append(limits.ServerOptions(), g.ServerOptions()...), grpc.MaxConcurrentStreams(64),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMin, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: time.Hour, Time: time.Minute, Timeout: 20 * time.Second})), nil
}
