package transport

import (
	"crypto/tls"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// DialCoordinator connects to the coordinator with TLS config tc, or in the clear if tc is nil.
func DialCoordinator(addr string, tc *tls.Config, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	tcreds := insecure.NewCredentials()
	if tc != nil {
		tcreds = credentials.NewTLS(tc)
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(tcreds),
		grpc.WithWriteBufferSize(256 << 10), grpc.WithInitialWindowSize(4 << 20), grpc.WithInitialConnWindowSize(16 << 20),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(vigilv1.MaxMessageBytes), grpc.MaxCallSendMsgSize(vigilv1.MaxMessageBytes))}, extra...)
	return grpc.NewClient(addr, opts...)
}
