package agent

import (
	"context"
	"runtime"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// bearer returns the credential of an "authorization: Bearer ..." value.
func bearer(v string) string {
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

func (a *Agent) grpcCaller(ctx context.Context) (context.Context, error) {
	var cred string // read without copying the whole metadata, as FromIncomingContext would
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) == 1 {
		cred = bearer(v[0])
	}
	c, err := a.authenticate(cred)
	if err != nil {
		return nil, err
	}
	return withCaller(ctx, c), nil
}

// grpcServerOptions are the agent's settings of gRPC's transport, apart from its API's.
func grpcServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		// Calls run on a few long-lived workers instead of a new goroutine each: a fresh
		// goroutine grows its stack on every call (runtime.newstack was a tenth of the CPU of a
		// local Authorize), which a worker's stack, once grown, does not.
		grpc.NumStreamWorkers(uint32(runtime.GOMAXPROCS(0))),
		// Fixed flow-control windows, large enough for the largest request, turn off gRPC's
		// bandwidth-delay estimation: on a connection idle between calls it pings after nearly
		// every request and the client answers, 6 of a local Authorize's 182 allocations on the
		// two sides, for a window a loopback connection never needs to grow.
		grpc.StaticStreamWindowSize(MaxBodyBytes),
		grpc.StaticConnWindowSize(MaxBodyBytes),
	}
}

// GRPCServer returns a gRPC server with the Agent service registered behind the bearer
// authentication. Serve it on a loopback address or a unix socket only.
//
// A unix socket is the faster of the two: the kernel skips TCP's work on every read and write,
// and a local call's median is 15-25% lower over it (BenchmarkAuthorizeGRPCUnix against
// BenchmarkAuthorizeGRPC). The slowest 1% of calls is not the agent's work but the Go runtime's
// garbage collector and the machine's other load: a call allocates some 75 objects in the
// agent (gRPC's own, then 6 in the handler and 10 in its audit record), so at the default
// GOGC=100 a collection starts every few hundred back-to-back calls, and the calls it meets
// make the p99. An agent with a latency target runs with GOGC=400: a fifth as many collections,
// for some 20 MiB more peak memory at full load. The agent leaves that setting to its process
// (the GOGC environment variable of `vigil agent`): a library that changed the collector would
// change it for an application embedding it too.
func (a *Agent) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	opts = append(append(opts, grpcServerOptions()...),
		grpc.MaxRecvMsgSize(MaxBodyBytes),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			ctx, err := a.grpcCaller(ctx)
			if err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			ctx, err := a.grpcCaller(ss.Context())
			if err != nil {
				return err
			}
			return h(srv, &authedStream{ss, ctx})
		}))
	s := grpc.NewServer(opts...)
	vigilv1.RegisterAgentServer(s, a)
	return s
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }
