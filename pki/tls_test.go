package pki

import (
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

func TestHandshakeIsTLS13WithHybridKeyExchange(t *testing.T) {
	e := newEnv(t, envOptions{})
	dev := e.enroll("dev-a")

	// Raw TLS first: what the server negotiates with our own client configuration.
	conn, err := tls.Dial("tcp", e.addr(), ClientTLS(tlsCert(dev), e.ca.Pool(), Coordinator("coord")))
	if err != nil {
		t.Fatal(err)
	}
	cs := conn.ConnectionState()
	conn.Close()
	if cs.Version != tls.VersionTLS13 || cs.CurveID != tls.X25519MLKEM768 || cs.NegotiatedProtocol != "h2" {
		t.Fatalf("negotiated version %x curve %v ALPN %q, want TLS 1.3, X25519MLKEM768, h2", cs.Version, cs.CurveID, cs.NegotiatedProtocol)
	}

	// And what the server saw on a real gRPC call.
	if err := getTask(e.dial(tlsCert(dev)), "dev-a"); err != nil {
		t.Fatal(err)
	}
	e.srv.mu.Lock()
	st := e.srv.state
	e.srv.mu.Unlock()
	if st.Version != tls.VersionTLS13 || st.CurveID != tls.X25519MLKEM768 || len(st.VerifiedChains) != 1 {
		t.Fatalf("server saw version %x curve %v and %d verified chains", st.Version, st.CurveID, len(st.VerifiedChains))
	}
}

func TestClassicalOrOldClientsAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	for _, tc := range []struct {
		name   string
		adjust func(*tls.Config)
	}{
		{"X25519 only", func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.X25519} }},
		{"P-256 only", func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP256} }},
		{"classical curves and the other hybrid", func(c *tls.Config) {
			c.CurvePreferences = []tls.CurveID{tls.SecP256r1MLKEM768, tls.X25519, tls.CurveP256}
		}},
		{"TLS 1.2", func(c *tls.Config) {
			c.MinVersion, c.MaxVersion, c.CurvePreferences = tls.VersionTLS12, tls.VersionTLS12, nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ClientTLS(nil, e.ca.Pool(), Coordinator(""))
			tc.adjust(cfg)
			conn, err := tls.Dial("tcp", e.addr(), cfg)
			if err == nil {
				cs := conn.ConnectionState()
				conn.Close()
				t.Fatalf("handshake succeeded with version %x curve %v", cs.Version, cs.CurveID)
			}
			if !strings.Contains(err.Error(), "handshake failure") && !strings.Contains(err.Error(), "protocol version") {
				t.Fatalf("unexpected error: %v", err)
			}
		})
	}
	// A server with classical curves only is refused by our client too.
	cfg := ServerTLS(e.coord.TLSCertificate(), e.ca.Pool())
	cfg.CurvePreferences = []tls.CurveID{tls.X25519}
	l, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	if conn, err := tls.Dial("tcp", l.Addr().String(), ClientTLS(nil, e.ca.Pool(), Coordinator(""))); err == nil {
		conn.Close()
		t.Fatal("client accepted a server offering classical key exchange only")
	}
}

func TestExpiredCertificateRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	// Valid at the handshake, expired by the time of a later call on the same connection.
	dev := e.enroll("dev-a")
	c := e.dial(tlsCert(dev))
	if err := getTask(c, "dev-a"); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(DefaultDeviceValidity + time.Second)
	wantStatus(t, getTask(c, "dev-a"), codes.Unauthenticated, ReasonCertExpired)

	// Expired already at the handshake: TLS refuses it before any call.
	key, _ := GenerateKey()
	old, err := e.ca.Issue(CertSpec{Identity: Device("dev-old"), PublicKey: key.Public(), Validity: time.Hour}, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	expired := Credentials{Key: key, Chain: []*x509.Certificate{old}, Roots: []*x509.Certificate{e.ca.Certificate()}}
	if err := serverVerdict(e.addr(), ClientTLS(tlsCert(expired), e.ca.Pool(), Coordinator(""))); err == nil || !strings.Contains(err.Error(), "expired certificate") {
		t.Fatalf("expired certificate at handshake: %v, want the server's expired-certificate alert", err)
	}
	if err := getTask(e.dial(tlsCert(expired)), "dev-old"); status.Code(err) != codes.Unavailable {
		t.Fatalf("expired certificate over gRPC: %v, want Unavailable", err)
	}
}

// serverVerdict completes a raw TLS handshake with cfg and reads once: in TLS 1.3 the client's
// handshake ends before the server has checked the client's certificate, so the server's alert
// arrives on the first read. It returns the handshake or read error; a timeout means the server
// accepted the certificate and waited for HTTP/2.
func serverVerdict(addr string, cfg *tls.Config) error {
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	return err
}

func TestCertificateFromAnotherCARefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	rogue, err := NewCA("rogue", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := GenerateKey()
	cert, err := rogue.Issue(CertSpec{Identity: Device("dev-a"), PublicKey: key.Public()}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	forged := Credentials{Key: key, Chain: []*x509.Certificate{cert}}
	// Go's client does not even send a certificate the server's CA list does not name...
	wantStatus(t, getTask(e.dial(tlsCert(forged)), "dev-a"), codes.Unauthenticated, ReasonNoClientCert)
	// ...and when forced to, the server refuses it in the handshake.
	cfg := ClientTLS(nil, e.ca.Pool(), Coordinator(""))
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return tlsCert(forged), nil }
	if err := serverVerdict(e.addr(), cfg); err == nil || !strings.Contains(err.Error(), "unknown certificate authority") {
		t.Fatalf("certificate of another CA: %v, want the server's unknown-CA alert", err)
	}
	conn, err := grpc.NewClient(e.addr(), grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := getTask(vigilv1.NewCoordinatorClient(conn), "dev-a"); status.Code(err) != codes.Unavailable {
		t.Fatalf("certificate of another CA over gRPC: %v, want Unavailable", err)
	}
	// The other way round: a server with a certificate of another CA is refused by the client.
	skey, _ := GenerateKey()
	scert, _ := rogue.Issue(CertSpec{Identity: Coordinator("coord"), PublicKey: skey.Public(), Hosts: []string{"127.0.0.1"}}, time.Now())
	l, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLS(Credentials{Key: skey, Chain: []*x509.Certificate{scert}}.TLSCertificate(), rogue.Pool()))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	if c, err := tls.Dial("tcp", l.Addr().String(), ClientTLS(nil, e.ca.Pool(), Coordinator(""))); err == nil {
		c.Close()
		t.Fatal("client trusted a server certificate from another CA")
	}
}
