package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/vigilauth/vigil/internal/cputime"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// benchPKI is a CA with a coordinator and a device certificate, issued without the network.
type benchPKI struct {
	ca            *CA
	server, child Credentials
	revs          *Revocations
}

func newBenchPKI(b *testing.B) benchPKI {
	b.Helper()
	now := time.Now()
	ca, err := NewCA("bench", 0, now)
	if err != nil {
		b.Fatal(err)
	}
	issue := func(id Identity, hosts ...string) Credentials {
		key, _ := GenerateKey()
		cert, err := ca.Issue(CertSpec{Identity: id, PublicKey: key.Public(), Hosts: hosts}, now)
		if err != nil {
			b.Fatal(err)
		}
		return Credentials{Key: key, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{ca.Certificate()}}
	}
	revs, err := OpenRevocations(filepath.Join(b.TempDir(), "revoked.json"))
	if err != nil {
		b.Fatal(err)
	}
	return benchPKI{ca: ca, server: issue(Coordinator("coord"), "127.0.0.1"), child: issue(Device("dev-a")), revs: revs}
}

// BenchmarkHandshake measures one full mutual-TLS handshake over loopback TCP, from dial until
// the client has read the server's first byte (so the server has verified the client's
// certificate too). No session resumption. The classical case is there for comparison only;
// ServerTLS and ClientTLS never offer it.
func BenchmarkHandshake(b *testing.B) {
	p := newBenchPKI(b)
	for _, tc := range []struct {
		name  string
		curve tls.CurveID
	}{{"X25519MLKEM768", tls.X25519MLKEM768}, {"X25519-classical-for-comparison", tls.X25519}} {
		b.Run(tc.name, func(b *testing.B) {
			scfg := ServerTLS(p.server.TLSCertificate(), p.ca.Pool())
			scfg.CurvePreferences = []tls.CurveID{tc.curve}
			l, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					go func() {
						defer c.Close()
						if c.(*tls.Conn).Handshake() == nil {
							c.Write([]byte{1})
						}
					}()
				}
			}()
			ccfg := ClientTLS(tlsCert(p.child), p.ca.Pool(), Coordinator("coord"))
			ccfg.CurvePreferences = []tls.CurveID{tc.curve}
			buf := make([]byte, 1)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c, err := tls.Dial("tcp", l.Addr().String(), ccfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, buf); err != nil {
					b.Fatal(err)
				}
				if cs := c.ConnectionState(); cs.CurveID != tc.curve || cs.DidResume {
					b.Fatalf("negotiated %v, resumed %v", cs.CurveID, cs.DidResume)
				}
				c.Close()
			}
		})
	}
}

// BenchmarkGuardAuthorize measures the interceptor's work per call: reading the peer's verified
// certificate, validity, identity, role, revocation lookup, rate limit, context value.
func BenchmarkGuardAuthorize(b *testing.B) {
	p := newBenchPKI(b)
	leaf := p.child.Leaf()
	info := credentials.TLSInfo{State: tls.ConnectionState{
		Version: tls.VersionTLS13, CurveID: tls.X25519MLKEM768, HandshakeComplete: true,
		PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, p.ca.Certificate()}},
	}}
	ctx := peer.NewContext(context.Background(), &peer.Peer{
		Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5000}, AuthInfo: info,
	})
	for _, tc := range []struct {
		name    string
		limited bool
	}{{"no-limiter", false}, {"with-limiter", true}} {
		b.Run(tc.name, func(b *testing.B) {
			// Time moves 10µs per call, so the limiter (at most 1e6 calls/s) never refuses and
			// the revocation file is looked at once per 100,000 calls, as at 100,000 calls/s.
			t := time.Now()
			now := func() time.Time { t = t.Add(10 * time.Microsecond); return t }
			var lim *Limiter
			if tc.limited {
				lim, _ = NewLimiter(LimiterConfig{Rate: 1e6, Burst: 1000})
			}
			g, err := NewGuard(GuardConfig{Roles: []Role{RoleDevice}, Revocations: p.revs, Limiter: lim, Now: now})
			if err != nil {
				b.Fatal(err)
			}
			handler := func(ctx context.Context, req any) (any, error) { return nil, RequireDevice(ctx, "dev-a") }
			si := &grpc.UnaryServerInfo{FullMethod: "/vigil.v1.Coordinator/GetTask"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := g.Unary(ctx, nil, si, handler); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUnaryRPC puts the guard's cost beside a whole unary call over loopback mutual TLS on an
// open connection.
func BenchmarkUnaryRPC(b *testing.B) {
	p := newBenchPKI(b)
	lim, _ := NewLimiter(LimiterConfig{Rate: 1e6, Burst: 1e6})
	g, _ := NewGuard(GuardConfig{Roles: []Role{RoleDevice}, Revocations: p.revs, Limiter: lim})
	for _, tc := range []struct {
		name string
		opts []grpc.ServerOption
	}{{"unguarded", nil}, {"guarded", g.ServerOptions()}} {
		b.Run(tc.name, func(b *testing.B) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			s := grpc.NewServer(append(tc.opts, grpc.Creds(credentials.NewTLS(ServerTLS(p.server.TLSCertificate(), p.ca.Pool()))))...)
			vigilv1.RegisterTrusteeServer(s, testTrustee{})
			go s.Serve(l)
			defer s.Stop()
			conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(
				credentials.NewTLS(ClientTLS(tlsCert(p.child), p.ca.Pool(), Coordinator("coord")))))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			c := vigilv1.NewTrusteeClient(conn)
			ctx := context.Background()
			if _, err := c.Info(ctx, &vigilv1.TrusteeInfoRequest{}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Info(ctx, &vigilv1.TrusteeInfoRequest{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nopCoordinator answers every update at once, without looking at it.
type nopCoordinator struct {
	vigilv1.UnimplementedCoordinatorServer
}

func (nopCoordinator) SubmitUpdate(context.Context, *vigilv1.SubmitUpdateRequest) (*vigilv1.SubmitUpdateResponse, error) {
	return &vigilv1.SubmitUpdateResponse{}, nil
}

// BenchmarkSubmitUpdateRPC100k is what moving one encrypted 100,000-parameter update (13
// ciphertexts, 3.4 MB) from a device to a frontend costs before any work on it: a unary call
// over mutual TLS on loopback, through the request limits and the guard a frontend serves
// with, to a server that answers at once. cpu-ns/op counts both ends (they share the
// process); run with -cpu 1 to see it on one core.
func BenchmarkSubmitUpdateRPC100k(b *testing.B) {
	p := newBenchPKI(b)
	lim, _ := NewLimiter(LimiterConfig{Rate: 1e6, Burst: 1e6})
	g, _ := NewGuard(GuardConfig{Roles: []Role{RoleDevice}, Revocations: p.revs, Limiter: lim})
	limits, err := NewRequestLimits(RequestLimitsConfig{MaxBytes: vigilv1.MaxRequestBytes})
	if err != nil {
		b.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	opts := append(limits.ServerOptions(), g.ServerOptions()...)
	s := grpc.NewServer(append(opts, grpc.Creds(credentials.NewTLS(ServerTLS(p.server.TLSCertificate(), p.ca.Pool()))))...)
	vigilv1.RegisterCoordinatorServer(s, nopCoordinator{})
	go s.Serve(l)
	defer s.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(
		credentials.NewTLS(ClientTLS(tlsCert(p.child), p.ca.Pool(), Coordinator("coord")))),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(vigilv1.MaxRequestBytes(vigilv1.Coordinator_SubmitUpdate_FullMethodName))))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	const ciphertexts, ciphertextBytes = 13, 262_232 // he.DefaultParams().UpdateBytes(100_000) / 13
	req := &vigilv1.SubmitUpdateRequest{DeviceId: "dev-a", Round: 1, Nonce: make([]byte, vigilv1.NonceSize), Signature: make([]byte, 3309),
		Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: 100_000}}
	for range ciphertexts {
		ct := make([]byte, ciphertextBytes)
		for i := range ct {
			ct[i] = byte(i * 7)
		}
		req.Update.Ciphertexts = append(req.Update.Ciphertexts, ct)
	}
	c := vigilv1.NewCoordinatorClient(conn)
	ctx := context.Background()
	if _, err := c.SubmitUpdate(ctx, req); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(ciphertexts * ciphertextBytes))
	b.ReportAllocs()
	cputime.Report(b)
	for b.Loop() {
		if _, err := c.SubmitUpdate(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
