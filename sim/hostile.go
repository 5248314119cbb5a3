package sim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// HostileConfig describes attackers on the network, as `vigil loadtest --hostile` and the
// attack tests run them against a coordinator: none holds a device certificate.
type HostileConfig struct {
	Addr  string         // the coordinator
	Roots *x509.CertPool // to complete TLS handshakes, as anyone can
	// Idle is how many connections to open and hold idle: one in ten completes the TLS
	// handshake (without a certificate), the others never send a byte.
	Idle int
	// Large is how many callers send unauthenticated calls of LargeBytes each, back to back.
	Large      int
	LargeBytes int
	// Flood is how many callers send small unauthenticated calls as fast as they are answered.
	Flood int
	// Relentless attackers reconnect at once when the server closes an idle connection,
	// instead of pausing longer each time it closes one at once.
	Relentless bool
	// Sources is how many loopback source addresses (127.0.0.2 onwards) the attackers spread
	// over when Addr is on loopback, as attackers on many hosts would; 0 means 1.
	Sources int
}

// HostileStats counts what the attackers achieved.
type HostileStats struct {
	IdleOpen, Calls, Refused, Other atomic.Int64
	Reasons                         sync.Map // reason -> *atomic.Int64
}

func (s *HostileStats) refused(err error) {
	reason := vigilv1.Reason(err)
	if reason == "" {
		reason = status.Code(err).String()
	}
	v, _ := s.Reasons.LoadOrStore(reason, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	s.Refused.Add(1)
}

// String summarises the refusals, such as "NO_CLIENT_CERT 1200, Unavailable 3".
func (s *HostileStats) String() string {
	out := ""
	s.Reasons.Range(func(k, v any) bool {
		if out != "" {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", k, v.(*atomic.Int64).Load())
		return true
	})
	return out
}

// StartHostile starts the attackers; they stop when ctx ends, and wait returns once they all have.
func StartHostile(ctx context.Context, cfg HostileConfig) (stats *HostileStats, wait func()) {
	stats = &HostileStats{}
	var wg sync.WaitGroup
	sources := max(cfg.Sources, 1)
	dialer := func(i int) *net.Dialer {
		d := &net.Dialer{Timeout: 5 * time.Second}
		if host, _, err := net.SplitHostPort(cfg.Addr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && ip.To4() != nil {
				d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%sources))}
			}
		}
		return d
	}
	tlsConfig := pki.ClientTLS(nil, cfg.Roots, pki.Coordinator(""))
	tlsConfig.ServerName, _, _ = net.SplitHostPort(cfg.Addr)
	for i := range cfg.Idle {
		wg.Go(func() { holdIdle(ctx, dialer(i), cfg.Addr, tlsConfig, i%10 == 0, cfg.Relentless, stats) })
	}
	if cfg.Large > 0 {
		// One message, shared by every caller and never copied: the attackers' memory stays
		// small, the server's is what is measured.
		msg, err := proto.Marshal(&vigilv1.SubmitUpdateRequest{DeviceId: "attacker", Round: 1, Update: &vigilv1.Update{
			Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Ciphertexts: [][]byte{make([]byte, cfg.LargeBytes)},
		}})
		if err != nil {
			panic(err) // a fixed, valid message
		}
		for i := range cfg.Large {
			wg.Go(func() {
				callLoop(ctx, dialer(i), cfg.Addr, tlsConfig, vigilv1.Coordinator_SubmitUpdate_FullMethodName, msg, stats)
			})
		}
	}
	for i := range cfg.Flood {
		msg, _ := proto.Marshal(&vigilv1.EnrollRequest{DeviceId: fmt.Sprintf("flood-%d", i), CertificateRequest: []byte("not a CSR")})
		method := vigilv1.Coordinator_Enroll_FullMethodName
		if i%2 == 1 {
			method, msg = vigilv1.Coordinator_GetModel_FullMethodName, nil
		}
		wg.Go(func() { callLoop(ctx, dialer(i), cfg.Addr, tlsConfig, method, msg, stats) })
	}
	return stats, wg.Wait
}

// holdIdle keeps one connection open and silent, reopening it when the server closes it. A
// connection refused or closed at once is retried after a growing pause, as a patient attacker
// would: retrying at once would burn this machine's CPU (in a load test, shared with the fleet
// measured), not the server's.
func holdIdle(ctx context.Context, d *net.Dialer, addr string, tc *tls.Config, handshake, relentless bool, stats *HostileStats) {
	pause := 50 * time.Millisecond
	for ctx.Err() == nil {
		opened := time.Now()
		if c, err := openIdle(ctx, d, addr, tc, handshake); err == nil {
			stats.IdleOpen.Add(1)
			stop := context.AfterFunc(ctx, func() { c.Close() })
			c.Read(make([]byte, 1)) // until the server closes it
			stop()
			c.Close()
			stats.IdleOpen.Add(-1)
		}
		if relentless {
			continue
		}
		if time.Since(opened) > time.Second {
			pause = 50 * time.Millisecond
		} else {
			pause = min(2*pause, 2*time.Second)
		}
		sleepCtx(ctx, pause)
	}
}

func openIdle(ctx context.Context, d *net.Dialer, addr string, tc *tls.Config, handshake bool) (net.Conn, error) {
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || !handshake {
		return c, err
	}
	tlsConn := tls.Client(c, tc)
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tlsConn, nil
}

// callLoop sends msg to method, pre-encoded, over one connection without a client certificate,
// back to back until ctx ends.
func callLoop(ctx context.Context, d *net.Dialer, addr string, tc *tls.Config, method string, msg []byte, stats *HostileStats) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) { return d.DialContext(ctx, "tcp", a) }),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20), grpc.ForceCodec(rawCodec{})))
	if err != nil {
		return
	}
	defer conn.Close()
	for ctx.Err() == nil {
		stats.Calls.Add(1)
		req := rawMessage(msg)
		err := conn.Invoke(ctx, method, &req, new(rawMessage))
		if err != nil && ctx.Err() == nil {
			stats.refused(err)
			if status.Code(err) == codes.Unavailable {
				// The connection was refused or closed: redialling at once would burn this
				// machine's CPU (shared with the fleet in a load test), not the server's.
				sleepCtx(ctx, 100*time.Millisecond)
			}
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// rawMessage is a message already encoded; rawCodec sends it as it is.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*rawMessage), nil }

func (rawCodec) Unmarshal(data []byte, v any) error {
	*v.(*rawMessage) = append((*v.(*rawMessage))[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }
