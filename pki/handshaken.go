package pki

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/tap"
)

// Handshaken returns the gRPC server credentials for connections from a Split, whose TLS
// handshake is already done: the peer's AuthInfo is the credentials.TLSInfo of that handshake,
// as the Guard expects. Any other connection is refused.
func Handshaken() credentials.TransportCredentials { return handshaken{} }

type handshaken struct{}

func (handshaken) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c, ok := conn.(*trackedConn)
	if !ok || c.tls == nil {
		return nil, nil, fmt.Errorf("pki: %T did not come from a Split listener", conn)
	}
	return c, credentials.TLSInfo{
		State:          c.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (handshaken) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("pki: Handshaken credentials are for servers")
}

func (handshaken) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.3"}
}

func (h handshaken) Clone() credentials.TransportCredentials { return h }

func (handshaken) OverrideServerName(string) error { return nil }

// OnlyMethods returns a tap handle for the server of connections without a client certificate:
// it refuses every method but those listed (Unauthenticated, NO_CLIENT_CERT) when the call's
// headers arrive, before any of its message is read. With a limiter, every call, refused or
// not, first spends from its remote address's budget (ResourceExhausted, RATE_LIMITED), so
// that a flood of calls that would be refused anyway costs no more than a flood of enrolments.
func OnlyMethods(limiter *Limiter, methods ...string) tap.ServerInHandle {
	allowed := map[string]bool{}
	for _, m := range methods {
		allowed[m] = true
	}
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if limiter != nil {
			var addr net.Addr
			if p, ok := peer.FromContext(ctx); ok {
				addr = p.Addr
			}
			key := "addr:" + remoteHost(addr)
			if ok, retry := limiter.Allow(key, time.Now()); !ok {
				return nil, refuse(codes.ResourceExhausted, ReasonRateLimited,
					fmt.Sprintf("rate limit exceeded for %s; retry in %v", key, retry.Round(time.Millisecond)), retry)
			}
		}
		if !allowed[info.FullMethodName] {
			return nil, refuse(codes.Unauthenticated, ReasonNoClientCert,
				fmt.Sprintf("%s needs a client certificate; enrol first", info.FullMethodName), 0)
		}
		return ctx, nil
	}
}
