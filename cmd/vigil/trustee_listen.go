package main

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/vigilauth/vigil/pki"
)

// trusteeTransport returns a trustee's guard, which admits only the coordinator, and its
// connection policy: the coordinator keeps a connection per trustee and makes a few calls at a
// time on it.
func trusteeTransport(revs *pki.Revocations) ([]grpc.ServerOption, error) {
	g, err := pki.NewGuard(pki.GuardConfig{Roles: []pki.Role{pki.RoleCoordinator}, Revocations: revs})
	if err != nil {
		return nil, err
	}
	return append(g.ServerOptions(), grpc.MaxConcurrentStreams(64),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: keepaliveMin, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: time.Hour, Time: time.Minute, Timeout: 20 * time.Second})), nil
}
