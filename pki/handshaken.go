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
//
// The server also gets the connections whose certificate the Split would not authenticate (a
// revoked one, or of a role not served). With guard, the guard of the server behind
// Authenticated, a call of such a connection to a method not listed is refused with the
// guard's reason (REVOKED, WRONG_ROLE, ...) rather than NO_CLIENT_CERT, so that its holder
// learns that retrying or enrolling again with the same certificate cannot help. If the guard
// admits the certificate after all (the revocation list could not be read at the handshake
// and can now), the call is refused as Unavailable: a new connection will be authenticated.
func OnlyMethods(limiter *Limiter, guard *Guard, methods ...string) tap.ServerInHandle {
	allowed := map[string]bool{}
	for _, m := range methods {
		allowed[m] = true
	}
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		p, _ := peer.FromContext(ctx)
		if limiter != nil {
			var addr net.Addr
			if p != nil {
				addr = p.Addr
			}
			key := "addr:" + remoteHost(addr)
			if ok, retry := limiter.Allow(key, time.Now()); !ok {
				return nil, refuse(codes.ResourceExhausted, ReasonRateLimited,
					fmt.Sprintf("rate limit exceeded for %s; retry in %v", key, retry.Round(time.Millisecond)), retry)
			}
		}
		if allowed[info.FullMethodName] {
			return ctx, nil
		}
		if guard != nil && p != nil {
			if tlsInfo, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(tlsInfo.State.VerifiedChains) > 0 {
				if _, err := guard.Authorize(ctx, info.FullMethodName); err != nil {
					return nil, err
				}
				return nil, refuse(codes.Unavailable, ReasonRevocationDown,
					"the certificate could not be checked when this connection was made; connect again", 0)
			}
		}
		return nil, refuse(codes.Unauthenticated, ReasonNoClientCert,
			fmt.Sprintf("%s needs a client certificate; enrol first", info.FullMethodName), 0)
	}
}
