// Package rpcmetrics measures gRPC calls for Prometheus: latency by method and status code,
// on the server and the client side, and calls refused by reason (the google.rpc.ErrorInfo
// reason Vigil's services and pki's guard attach).
package rpcmetrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Metrics are one process's RPC metrics.
type Metrics struct {
	// Logger, if set, gets one line per failed call: method, code, reason, caller and duration.
	Logger *slog.Logger

	duration *prometheus.HistogramVec
	refused  *prometheus.CounterVec
}

// New registers the RPC metrics of a process on reg; side is "server" or "client".
func New(reg prometheus.Registerer, side string) (*Metrics, error) {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_rpc_" + side + "_duration_seconds", Help: "gRPC call latency (" + side + " side) by method and status code.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"method", "code"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_rpc_" + side + "_refused_total", Help: "gRPC calls refused (unauthenticated, permission denied, rate limited) by reason.",
		}, []string{"method", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.duration, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Metrics) observe(ctx context.Context, method string, start time.Time, err error) {
	code := status.Code(err)
	took := time.Since(start)
	m.duration.WithLabelValues(method, code.String()).Observe(took.Seconds())
	if err != nil && m.Logger != nil {
		caller := "unknown"
		if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
			caller = p.Addr.String()
		}
		m.Logger.Warn("call failed", "method", method, "code", code.String(), "reason", vigilv1.Reason(err),
			"caller", caller, "duration", took, "err", status.Convert(err).Message())
	}
	switch code {
	case codes.Unauthenticated, codes.PermissionDenied, codes.ResourceExhausted:
		reason := vigilv1.Reason(err)
		if reason == "" {
			reason = code.String()
		}
		m.refused.WithLabelValues(method, reason).Inc()
	}
}

// ServerOptions measure every call a server answers. Put them before any guard's options, so
// that the calls the guard refuses are counted too.
func (m *Metrics) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			start := time.Now()
			resp, err := h(ctx, req)
			m.observe(ctx, info.FullMethod, start, err)
			return resp, err
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			start := time.Now()
			err := h(srv, ss)
			m.observe(ss.Context(), info.FullMethod, start, err)
			return err
		}),
	}
}

// DialOptions measure every unary call a client makes (streams are measured by their opening).
func (m *Metrics) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			start := time.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			m.observe(ctx, method, start, err)
			return err
		}),
	}
}
