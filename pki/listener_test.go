package pki

import (
	"crypto/tls"
	"net"
	"testing"
	"time"
)

// splitEnv is a Split on loopback with a coordinator certificate and a device certificate from
// one CA.
type splitEnv struct {
	split  *Split
	ca     *CA
	device tls.Certificate
}

func newSplitEnv(t *testing.T, cfg ListenerConfig) *splitEnv {
	t.Helper()
	now := time.Now()
	ca, err := NewCA("Vigil test CA", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(id Identity, hosts []string) tls.Certificate {
		key, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.Issue(CertSpec{Identity: id, PublicKey: key.Public(), Hosts: hosts}, now)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	cfg.TLS = ServerTLS(issue(Coordinator("coord"), []string{"127.0.0.1"}), ca.Pool())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSplit(lis, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &splitEnv{split: s, ca: ca, device: issue(Device("d1"), nil)}
}

// dial connects from source address from (127.0.0.x), completing the handshake when cert is
// not nil or handshake is set.
func (e *splitEnv) dial(t *testing.T, from string, cert *tls.Certificate, handshake bool) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", e.split.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if cert == nil && !handshake {
		return c
	}
	cfg := ClientTLS(cert, e.ca.Pool(), Coordinator(""))
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake from %s: %v", from, err)
	}
	return tc
}

func accepted(t *testing.T, l net.Listener) *trackedConn {
	t.Helper()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			ch <- c
		}
	}()
	select {
	case c := <-ch:
		return c.(*trackedConn)
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

func TestSplitRoutesByCertificate(t *testing.T) {
	e := newSplitEnv(t, ListenerConfig{})
	e.dial(t, "127.0.0.1", &e.device, true)
	if c := accepted(t, e.split.Authenticated()); len(c.ConnectionState().VerifiedChains) == 0 {
		t.Fatal("a connection on Authenticated has no verified chain")
	}
	e.dial(t, "127.0.0.1", nil, true)
	if c := accepted(t, e.split.Unauthenticated()); len(c.ConnectionState().PeerCertificates) != 0 {
		t.Fatal("a connection on Unauthenticated has a client certificate")
	}
	if h, u, a := e.split.Counts(); h != 0 || u != 1 || a != 1 {
		t.Fatalf("counts handshaking %d, unauthenticated %d, authenticated %d; want 0, 1, 1", h, u, a)
	}
}

// TestSplitKeepsRoomForDevices fills every handshake and stranger slot from attacking
// addresses, more than their caps allow; a device still completes its handshake, and the caps
// hold.
func TestSplitKeepsRoomForDevices(t *testing.T) {
	cfg := ListenerConfig{MaxHandshakes: 8, MaxHandshakesPerHost: 4, MaxUnauthenticated: 4, MaxUnauthenticatedPerHost: 2}
	e := newSplitEnv(t, cfg)
	go func() { // the stranger server: accept and hold
		for {
			if _, err := e.split.Unauthenticated().Accept(); err != nil {
				return
			}
		}
	}()
	for i := range 30 {
		from := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}[i%3]
		e.dial(t, from, nil, false)
		if i%5 == 0 {
			// Refused or evicted, some of these: the caps at work.
			cfg := ClientTLS(nil, e.ca.Pool(), Coordinator(""))
			cfg.ServerName = "127.0.0.1"
			tc := tls.Client(e.dial(t, from, nil, false), cfg)
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			tc.Handshake()
		}
	}
	e.dial(t, "127.0.0.1", &e.device, true)
	accepted(t, e.split.Authenticated())
	time.Sleep(100 * time.Millisecond)
	if h, u, _ := e.split.Counts(); h > cfg.MaxHandshakes || u > cfg.MaxUnauthenticated {
		t.Fatalf("%d handshaking and %d without a certificate, caps %d and %d", h, u, cfg.MaxHandshakes, cfg.MaxUnauthenticated)
	}
}
