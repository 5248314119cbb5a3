package pki

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// ReasonNotTLS refuses a call that did not arrive over TLS (Unauthenticated): the server was set
// up without ServerTLS.
const ReasonNotTLS = "NOT_TLS"

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Roles are the roles this server serves (devices for the coordinator, the coordinator for
	// trustees). A certificate of another role is refused. Required.
	Roles []Role
	// Unauthenticated lists the full method names, such as "/vigil.v1.Coordinator/Enroll", that
	// may be called without a client certificate. Every other method needs one.
	Unauthenticated []string
	// Revocations is checked on every call that carries a certificate. Required.
	Revocations *Revocations
	// Limiter, if set, limits calls per identity, and per remote IP address for calls without a
	// certificate.
	Limiter *Limiter
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

func (c *GuardConfig) validate() error {
	if len(c.Roles) == 0 {
		return errors.New("pki: guard: no roles to serve")
	}
	for _, r := range c.Roles {
		if !r.valid() {
			return fmt.Errorf("pki: guard: unknown role %q", r)
		}
	}
	for _, m := range c.Unauthenticated {
		if len(m) < 3 || m[0] != '/' {
			return fmt.Errorf("pki: guard: %q is not a full method name like /package.Service/Method", m)
		}
	}
	if c.Revocations == nil {
		return errors.New("pki: guard: no revocation list")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Guard authenticates every call on a gRPC server: it takes the peer's verified certificate from
// the TLS state, checks its validity period, role and revocation, applies the rate limit, and
// puts the Identity into the context for IdentityFromContext. Install it with ServerOptions.
type Guard struct {
	cfg    GuardConfig
	unauth map[string]bool
}

// NewGuard returns a Guard.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	g := &Guard{cfg: cfg, unauth: map[string]bool{}}
	for _, m := range cfg.Unauthenticated {
		g.unauth[m] = true
	}
	return g, nil
}

// ServerOptions returns the options that install the guard's unary and stream interceptors. Put
// them with grpc.Creds(credentials.NewTLS(ServerTLS(...))) and the message size limits.
func (g *Guard) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(g.Unary), grpc.ChainStreamInterceptor(g.Stream)}
}

// Unary is a grpc.UnaryServerInterceptor.
func (g *Guard) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := g.Authorize(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream is a grpc.StreamServerInterceptor. The checks run once, when the stream starts.
func (g *Guard) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := g.Authorize(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return handler(srv, guardedStream{ServerStream: ss, ctx: ctx})
}

type guardedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s guardedStream) Context() context.Context { return s.ctx }

// Authorize runs the guard's checks for a call of method on ctx and returns the context carrying
// the caller's Identity, or a status error with a reason.
func (g *Guard) Authorize(ctx context.Context, method string) (context.Context, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, refuse(codes.Unauthenticated, ReasonNotTLS, "no peer information on the call", 0)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return nil, refuse(codes.Unauthenticated, ReasonNotTLS, "the connection is not TLS", 0)
	}
	now := g.cfg.Now()
	chains := info.State.VerifiedChains
	if len(chains) == 0 {
		// Only verified chains count: a certificate that was presented but not verified (a server
		// misconfigured with RequestClientCert) is treated as none.
		if !g.unauth[method] {
			return nil, refuse(codes.Unauthenticated, ReasonNoClientCert,
				fmt.Sprintf("%s needs a client certificate; enrol first", method), 0)
		}
		if g.cfg.Limiter != nil {
			if err := g.limit("addr:"+remoteHost(p.Addr), now); err != nil {
				return nil, err
			}
		}
		return ctx, nil
	}
	for _, c := range chains[0] {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return nil, refuse(codes.Unauthenticated, ReasonCertExpired,
				fmt.Sprintf("certificate %q is valid from %s to %s, not now", c.Subject.CommonName,
					c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339)), 0)
		}
	}
	leaf := chains[0][0]
	id, err := IdentityOf(leaf)
	if err != nil {
		return nil, refuse(codes.Unauthenticated, ReasonBadIdentity, err.Error(), 0)
	}
	if !slices.Contains(g.cfg.Roles, id.Role) {
		return nil, refuse(codes.PermissionDenied, ReasonWrongRole,
			fmt.Sprintf("this server does not serve %ss (caller %s)", id.Role, id), 0)
	}
	if err := g.cfg.Revocations.Check(id, leaf, now); err != nil {
		return nil, StatusError(err)
	}
	if g.cfg.Limiter != nil {
		if err := g.limit(string(id.Role)+"/"+id.ID, now); err != nil {
			return nil, err
		}
	}
	return context.WithValue(ctx, identityKey{}, id), nil
}

func (g *Guard) limit(key string, now time.Time) error {
	if ok, retry := g.cfg.Limiter.Allow(key, now); !ok {
		return refuse(codes.ResourceExhausted, ReasonRateLimited,
			fmt.Sprintf("rate limit exceeded for %s; retry in %v", key, retry.Round(time.Millisecond)), retry)
	}
	return nil
}

// remoteHost is the key per-address limits count a peer under: its IPv4 address, or the /64
// network of an IPv6 one. An IPv6 subscriber is usually given a whole /64, and would otherwise
// take a fresh address, and a fresh allowance, for every connection.
func remoteHost(a net.Addr) string {
	if a == nil {
		return "unknown"
	}
	var addr netip.Addr
	if tcp, ok := a.(*net.TCPAddr); ok {
		addr, _ = netip.AddrFromSlice(tcp.IP)
	} else if h, _, err := net.SplitHostPort(a.String()); err == nil {
		if addr, err = netip.ParseAddr(h); err != nil {
			return h
		}
	} else {
		return a.String()
	}
	if addr = addr.Unmap(); addr.Is6() {
		p, _ := addr.WithZone("").Prefix(64)
		return p.String()
	}
	if !addr.IsValid() {
		return "unknown"
	}
	return addr.String()
}

type identityKey struct{}

// IdentityFromContext returns the caller's verified Identity, set by the Guard; false if the
// call carried no certificate (an unauthenticated method such as Enroll).
func IdentityFromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Require returns nil if the caller's verified identity is want, and otherwise a status error:
// Unauthenticated NO_CLIENT_CERT without a certificate, PermissionDenied WRONG_ROLE or
// IDENTITY_MISMATCH for another identity.
func Require(ctx context.Context, want Identity) error {
	id, ok := IdentityFromContext(ctx)
	if !ok {
		return refuse(codes.Unauthenticated, ReasonNoClientCert, fmt.Sprintf("this call needs the certificate of %s", want), 0)
	}
	if id.Role != want.Role {
		return refuse(codes.PermissionDenied, ReasonWrongRole, fmt.Sprintf("the caller is %s; this call is for a %s", id, want.Role), 0)
	}
	if id.ID != want.ID {
		return refuse(codes.PermissionDenied, ReasonIdentityMismatch,
			fmt.Sprintf("the certificate is for %s %q but the request claims %q", id.Role, id.ID, want.ID), 0)
	}
	return nil
}

// RequireDevice returns nil if the caller's certificate is that of the device the request claims
// to come from; see Require.
func RequireDevice(ctx context.Context, claimedDeviceID string) error {
	return Require(ctx, Device(claimedDeviceID))
}
