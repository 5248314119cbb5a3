package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// splitEnv is a Split on loopback with a coordinator certificate and a device certificate from
// one CA.
type splitEnv struct {
	split  *Split
	ca     *CA
	device tls.Certificate
	issue  func(id Identity) tls.Certificate // a client certificate from the CA
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
	return &splitEnv{split: s, ca: ca, device: issue(Device("d1"), nil),
		issue: func(id Identity) tls.Certificate { return issue(id, nil) }}
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

// hold accepts and keeps the connections of l until the test ends, as a gRPC server keeps idle
// connections open.
func hold(t *testing.T, l net.Listener) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
}

// TestAttackCertificateHoldsDeviceSlots: one certificate that verifies under the CA, but is
// revoked, of a role the server does not serve, or simply one identity's, opens more
// connections than there are authenticated slots and holds them idle. A device must still get
// an authenticated connection, and the attacker must hold no more than its identity's share.
func TestAttackCertificateHoldsDeviceSlots(t *testing.T) {
	const slots, share = 6, 2
	for _, tc := range []struct {
		name     string
		attacker Identity
		revoked  bool
		maxAuth  int // authenticated connections the attacker may end up with
	}{
		{"revoked device", Device("mallory"), true, 0},
		{"trustee", Trustee("t1"), false, 0},
		{"operator", Operator("op"), false, 0},
		{"one device's many connections", Device("mallory"), false, share},
	} {
		t.Run(tc.name, func(t *testing.T) {
			revs, err := OpenRevocations(filepath.Join(t.TempDir(), "revoked.json"))
			if err != nil {
				t.Fatal(err)
			}
			e := newSplitEnv(t, ListenerConfig{
				MaxAuthenticated: slots, MaxAuthenticatedPerIdentity: share,
				// Room for every attacking connection among the strangers, so that what is
				// measured is the authenticated class.
				MaxUnauthenticated: 4 * slots, MaxUnauthenticatedPerHost: 4 * slots,
				Roles: []Role{RoleDevice}, Revocations: revs,
			})
			hold(t, e.split.Unauthenticated())
			attacker := e.issue(tc.attacker)
			if tc.revoked {
				if err := revs.RevokeIdentity(tc.attacker, time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			// The authenticated server holds what it accepts, except the device's connection,
			// which the test takes.
			got := make(chan *trackedConn, 4*slots)
			go func() {
				for {
					c, err := e.split.Authenticated().Accept()
					if err != nil {
						return
					}
					got <- c.(*trackedConn)
				}
			}()
			for range 2 * slots {
				e.dial(t, "127.0.0.2", &attacker, true)
			}
			time.Sleep(200 * time.Millisecond) // let the server settle the attacker's connections
			e.dial(t, "127.0.0.1", &e.device, true)
			deadline := time.After(3 * time.Second)
			for {
				select {
				case c := <-got:
					id, err := IdentityOf(c.ConnectionState().VerifiedChains[0][0])
					if err != nil {
						t.Fatal(err)
					}
					if id != Device("d1") {
						continue
					}
					e.split.mu.Lock()
					n := 0
					if l := e.split.idents[tc.attacker]; l != nil {
						n = l.Len()
					}
					e.split.mu.Unlock()
					if n > tc.maxAuth {
						t.Fatalf("%s holds %d authenticated connections, want at most %d", tc.attacker, n, tc.maxAuth)
					}
					return
				case <-deadline:
					_, _, a := e.split.Counts()
					t.Fatalf("the device got no authenticated connection: %s holds the class (%d authenticated, cap %d)", tc.attacker, a, slots)
				}
			}
		})
	}
}

// TestSplitEvictsAnIdentitysOldest: beyond its share, an identity's new connection replaces its
// oldest, so that a device reconnecting is not kept out by its own dead connections.
func TestSplitEvictsAnIdentitysOldest(t *testing.T) {
	e := newSplitEnv(t, ListenerConfig{MaxAuthenticatedPerIdentity: 2})
	var conns []*trackedConn
	for range 3 {
		e.dial(t, "127.0.0.1", &e.device, true)
		conns = append(conns, accepted(t, e.split.Authenticated()))
	}
	if _, _, a := e.split.Counts(); a != 2 {
		t.Fatalf("%d authenticated connections of one identity, want its share of 2", a)
	}
	conns[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := conns[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the oldest connection is still open")
	}
	for _, c := range conns[1:] {
		c.Close()
	}
	if _, _, a := e.split.Counts(); a != 0 || len(e.split.idents) != 0 {
		t.Fatalf("after closing: %d authenticated, %d identities tracked", a, len(e.split.idents))
	}
}

func TestListenerConfigRefusesUnknownRole(t *testing.T) {
	cfg := ListenerConfig{TLS: &tls.Config{}, Roles: []Role{"devise"}}
	if err := cfg.validate(); err == nil {
		t.Fatal("a listener serving an unknown role was accepted")
	}
}

// TestOnlyMethodsTellsRefusedCertificates: a connection whose certificate the Split handed to
// the strangers' server hears the guard's reason for any method but enrolment, so that its
// client stops instead of retrying or enrolling again.
func TestOnlyMethodsTellsRefusedCertificates(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("Vigil test CA", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	revs, err := OpenRevocations(filepath.Join(t.TempDir(), "revoked.json"))
	if err != nil {
		t.Fatal(err)
	}
	guard, err := NewGuard(GuardConfig{Roles: []Role{RoleDevice}, Revocations: revs})
	if err != nil {
		t.Fatal(err)
	}
	cert := func(id Identity) *x509.Certificate {
		key, err := GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		c, err := ca.Issue(CertSpec{Identity: id, PublicKey: key.Public()}, now)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := revs.RevokeIdentity(Device("gone"), now); err != nil {
		t.Fatal(err)
	}
	handle := OnlyMethods(nil, guard, enrollMethod)
	for _, tc := range []struct {
		name   string
		cert   *x509.Certificate // nil: none
		method string
		code   codes.Code
		reason string
	}{
		{"stranger enrols", nil, enrollMethod, codes.OK, ""},
		{"stranger", nil, vigilv1.Coordinator_GetTask_FullMethodName, codes.Unauthenticated, ReasonNoClientCert},
		{"revoked device", cert(Device("gone")), vigilv1.Coordinator_GetTask_FullMethodName, codes.Unauthenticated, ReasonRevoked},
		{"revoked device enrols", cert(Device("gone")), enrollMethod, codes.OK, ""}, // the Guard's interceptor refuses it
		{"trustee", cert(Trustee("t1")), vigilv1.Coordinator_GetTask_FullMethodName, codes.PermissionDenied, ReasonWrongRole},
		{"device admitted by now", cert(Device("ok")), vigilv1.Coordinator_GetTask_FullMethodName, codes.Unavailable, ReasonRevocationDown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := credentials.TLSInfo{}
			if tc.cert != nil {
				info.State.PeerCertificates = []*x509.Certificate{tc.cert}
				info.State.VerifiedChains = [][]*x509.Certificate{{tc.cert, ca.Certificate()}}
			}
			ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, AuthInfo: info})
			_, err := handle(ctx, &tap.Info{FullMethodName: tc.method})
			if status.Code(err) != tc.code || Reason(err) != tc.reason {
				t.Fatalf("got %v, want code %v reason %q", err, tc.code, tc.reason)
			}
		})
	}
}
