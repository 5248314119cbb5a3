package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigilauth/vigil/internal/natstest"
	"github.com/vigilauth/vigil/pki"
)

// testPKI is an organisation's CA with the certificates the tests present: the coordinator's,
// which every process of the tier holds, a device's and a trustee's from the same CA, a revoked
// coordinator certificate, and a coordinator certificate from another CA.
type testPKI struct {
	org                          *pki.CA
	coordinator, device, trustee tls.Certificate
	foreign                      tls.Certificate
	revokedCoordinator           tls.Certificate // a coordinator certificate whose serial is revoked
	revoked                      *pki.Revocations
	coordDir                     string // the coordinator's credentials as files, for nats-server
	coordinatorURI               string
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	now := time.Now()
	org, err := pki.NewCA("Vigil test CA", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA("Another CA", 24*time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *pki.CA, id pki.Identity, hosts ...string) (tls.Certificate, pki.Credentials) {
		t.Helper()
		key, err := pki.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		cert, err := ca.Issue(pki.CertSpec{Identity: id, PublicKey: key.Public(), Validity: time.Hour, Hosts: hosts}, now)
		if err != nil {
			t.Fatal(err)
		}
		creds := pki.Credentials{Key: key, Chain: []*x509.Certificate{cert}, Roots: []*x509.Certificate{ca.Certificate()}}
		return creds.TLSCertificate(), creds
	}
	p := &testPKI{org: org, coordDir: filepath.Join(t.TempDir(), "coordinator"), coordinatorURI: pki.Coordinator("coordinator").String()}
	var creds pki.Credentials
	p.coordinator, creds = issue(org, pki.Coordinator("coordinator"), "127.0.0.1", "localhost")
	if err := pki.SaveCredentials(p.coordDir, creds); err != nil {
		t.Fatal(err)
	}
	p.device, _ = issue(org, pki.Device("laptop-1"))
	p.trustee, _ = issue(org, pki.Trustee("t1"), "127.0.0.1")
	p.foreign, _ = issue(other, pki.Coordinator("coordinator"), "127.0.0.1")
	var stolen pki.Credentials
	p.revokedCoordinator, stolen = issue(org, pki.Coordinator("coordinator"), "127.0.0.1")
	if p.revoked, err = pki.OpenRevocations(filepath.Join(t.TempDir(), "revoked.json")); err != nil {
		t.Fatal(err)
	}
	if err := p.revoked.RevokeSerial(stolen.Leaf().SerialNumber, now); err != nil {
		t.Fatal(err)
	}
	return p
}

// client is the TLS configuration of a client presenting cert (none if nil) and verifying the
// servers as the tier's clients do.
func (p *testPKI) client(cert *tls.Certificate) *tls.Config {
	c := ClientTLS(tls.Certificate{}, p.org.Pool(), nil)
	// Presented whatever CAs the server asks for, so that the server's own check refuses it.
	c.Certificates = nil
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if cert == nil {
			return &tls.Certificate{}, nil
		}
		return cert, nil
	}
	return c
}

func (p *testPKI) natsTLS() natstest.TLS {
	return natstest.TLS{
		CertFile: filepath.Join(p.coordDir, pki.CertFile), KeyFile: filepath.Join(p.coordDir, pki.KeyFile),
		CAFile: filepath.Join(p.coordDir, pki.RootsFile), Users: []string{p.coordinatorURI}, Client: p.client(&p.coordinator),
	}
}

const testToken = "the-tier-secret"

func startTLSEmbedded(t *testing.T, p *testPKI) *Embedded {
	t.Helper()
	srv, err := StartEmbeddedConfig(context.Background(), EmbeddedConfig{Dir: t.TempDir(), Token: testToken,
		TLS: ServerTLS(p.coordinator, p.org.Pool(), p.revoked)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestTierOverTLS is the tier's own processes on the embedded server: the coordinator's
// certificate and the token, TLS 1.3 with the hybrid key exchange, an update stored and read.
func TestTierOverTLS(t *testing.T) {
	p := newTestPKI(t)
	srv := startTLSEmbedded(t, p)
	if !strings.HasPrefix(srv.URL(), "tls://") {
		t.Errorf("URL %q: want tls://", srv.URL())
	}
	nc, err := nats.Connect(srv.URL(), nats.Secure(ClientTLS(p.coordinator, p.org.Pool(), nil)), nats.Token(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	checkHandshake(t, nc)
	tierRoundTrip(t, nc, 1)
}

// TestTierInProcess is the leader beside its embedded server, which speaks only TLS on its
// port: in process, without TLS, with the token, an update stored and read.
func TestTierInProcess(t *testing.T) {
	p := newTestPKI(t)
	srv := startTLSEmbedded(t, p)
	nc, err := srv.ConnectInProcess(nats.Token(testToken))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.TLSConnectionState(); err == nil {
		t.Error("the in-process connection speaks TLS")
	}
	tierRoundTrip(t, nc, 1)
}

func checkHandshake(t *testing.T, nc *nats.Conn) {
	t.Helper()
	cs, err := nc.TLSConnectionState()
	if err != nil {
		t.Fatal(err)
	}
	if cs.Version != tls.VersionTLS13 || cs.CurveID != pki.KeyExchange {
		t.Errorf("TLS version %#x, key exchange %v; want TLS 1.3 with %v", cs.Version, cs.CurveID, pki.KeyExchange)
	}
	if id, err := pki.IdentityOf(cs.PeerCertificates[0]); err != nil || id.Role != pki.RoleCoordinator {
		t.Errorf("server identity %v, %v", id, err)
	}
}

// tierRoundTrip opens the tier, stores an update for a round and reads it back.
func tierRoundTrip(t *testing.T, nc *nats.Conn, replicas int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tier, err := Open(ctx, nc, Config{Model: "keystroke-ae", Replicas: replicas})
	if err != nil {
		t.Fatal(err)
	}
	if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, 1, "observed-device-7", []byte("update of observed-device-7"), Stamp{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := followed(t, tier, 1); len(got) != 1 || got[0] != "observed-device-7" {
		t.Fatalf("round holds %q", got)
	}
}

// TestAttackTierWithoutCoordinatorCertificate is someone on the network path of the tier, or a
// device or trustee of the organisation, trying to write into it: without the coordinator's
// certificate from the organisation's CA, the embedded server and a TLS nats-server cluster
// refuse the connection, whatever else is presented (the token included); the embedded server
// also refuses the coordinator's certificate without the token, and a revoked one.
func TestAttackTierWithoutCoordinatorCertificate(t *testing.T) {
	p := newTestPKI(t)
	type attempt struct {
		name string
		opts []nats.Option
	}
	attempts := func(withToken bool) []attempt {
		token := func(o ...nats.Option) []nats.Option {
			if withToken {
				o = append(o, nats.Token(testToken))
			}
			return o
		}
		return []attempt{
			{"no certificate, the token", token(nats.Secure(p.client(nil)))},
			{"another CA's coordinator certificate, the token", token(nats.Secure(p.client(&p.foreign)))},
			{"the organisation's device certificate, the token", token(nats.Secure(p.client(&p.device)))},
			{"the organisation's trustee certificate, the token", token(nats.Secure(p.client(&p.trustee)))},
			// nats.go upgrades to TLS when the server requires it, with no certificate.
			{"the token, no TLS configured", token()},
		}
	}
	refused := func(t *testing.T, url string, opts []nats.Option) {
		t.Helper()
		nc, err := nats.Connect(url, append(opts, nats.MaxReconnects(0), nats.Timeout(10*time.Second))...)
		if err == nil {
			defer nc.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := Open(ctx, nc, Config{Model: "keystroke-ae"}); err == nil {
				t.Fatal("admitted: opened the tier")
			}
			t.Fatal("admitted: connected")
		}
		t.Logf("refused: %v", err)
	}

	t.Run("embedded", func(t *testing.T) {
		srv := startTLSEmbedded(t, p)
		for _, a := range append(attempts(true),
			attempt{"the coordinator's certificate, no token", []nats.Option{nats.Secure(p.client(&p.coordinator))}},
			attempt{"a revoked coordinator certificate, the token", []nats.Option{nats.Secure(p.client(&p.revokedCoordinator)), nats.Token(testToken)}}) {
			t.Run(a.name, func(t *testing.T) { refused(t, srv.URL(), a.opts) })
		}
		t.Run("plaintext", func(t *testing.T) { plaintextRefused(t, srv.URL()) })
		nc, err := nats.Connect(srv.URL(), nats.Secure(p.client(&p.coordinator)), nats.Token(testToken))
		if err != nil {
			t.Fatalf("the tier's own certificate and token: %v", err)
		}
		nc.Close()
	})
	t.Run("nats-server cluster", func(t *testing.T) {
		c := natstest.StartClusterTLS(t, 3, p.natsTLS())
		url := c.URL(0)
		for _, a := range attempts(true) {
			t.Run(a.name, func(t *testing.T) { refused(t, url, a.opts) })
		}
		t.Run("plaintext", func(t *testing.T) { plaintextRefused(t, url) })
		nc, err := nats.Connect(url, c.ClientOptions()...)
		if err != nil {
			t.Fatalf("the tier's own certificate: %v", err)
		}
		nc.Close()
	})
}

// plaintextRefused speaks NATS in the clear to the server at url, as a client that ignores its
// demand for TLS would: the server answers nothing to the CONNECT and PING but closes the
// connection, so a plaintext session, and whatever it would carry, never starts.
func plaintextRefused(t *testing.T, url string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "tls://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("INFO does not require TLS: %s", info)
	}
	if _, err := io.WriteString(conn, "CONNECT {\"verbose\":true,\"pedantic\":false,\"tls_required\":false,\"auth_token\":\"guessed\"}\r\nPING\r\n"); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if strings.Contains(string(rest), "+OK") || strings.Contains(string(rest), "PONG") {
		t.Fatalf("the server took a plaintext session: %q", rest)
	}
	t.Logf("plaintext session ended: %q, %v", rest, err)
}

// TestAttackTierObserverSeesNothing is a passive observer of the tier's network path: it records
// every byte between a frontend and the embedded server while the frontend opens the tier and
// stores a device's update, and finds neither the token, nor the device's name, nor the update.
func TestAttackTierObserverSeesNothing(t *testing.T) {
	p := newTestPKI(t)
	srv := startTLSEmbedded(t, p)
	rec := recordingProxy(t, strings.TrimPrefix(srv.URL(), "tls://"))
	nc, err := nats.Connect("tls://"+rec.addr, nats.Secure(ClientTLS(p.coordinator, p.org.Pool(), nil)), nats.Token(testToken),
		nats.MaxReconnects(0), nats.IgnoreDiscoveredServers())
	if err != nil {
		t.Fatal(err)
	}
	checkHandshake(t, nc)
	tierRoundTrip(t, nc, 1)
	nc.Close()
	seen := rec.bytes()
	if len(seen) < 1000 {
		t.Fatalf("the proxy saw only %d bytes", len(seen))
	}
	for _, secret := range []string{testToken, "observed-device-7", "update of", "plan", "vigil.rounds"} {
		if bytes.Contains(seen, []byte(secret)) {
			t.Errorf("the observer read %q in %d bytes", secret, len(seen))
		}
	}
	t.Logf("the observer saw %d bytes and none of the tier's secrets", len(seen))
}

type recorder struct {
	addr string
	mu   sync.Mutex
	buf  bytes.Buffer
}

func (r *recorder) Write(b []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// recordingProxy forwards connections on a local port to target, recording both directions.
func recordingProxy(t *testing.T, target string) *recorder {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	rec := &recorder{addr: l.Addr().String()}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { io.Copy(io.MultiWriter(out, rec), in); out.Close() }()
			go func() { io.Copy(io.MultiWriter(in, rec), out); in.Close() }()
		}
	}()
	return rec
}

// TestTLSClusterSurvivesKilledNode runs the tier on three nats-server processes speaking only
// mutual TLS, clients and routes: a round's update is stored, the server leading the round's
// stream is killed, the next update is stored on the two left, the round is closed with both,
// and the killed server restarts.
func TestTLSClusterSurvivesKilledNode(t *testing.T) {
	p := newTestPKI(t)
	c := natstest.StartClusterTLS(t, 3, p.natsTLS())
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), append(c.ClientOptions(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	checkHandshake(t, nc)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tier := roundOfOne(t, ctx, nc)
	leader := killStreamLeader(t, ctx, c, tier, 1)
	start := time.Now()
	attempts := acceptThroughElection(t, ctx, tier, 1, "b")
	t.Logf("stored after the stream leader was killed: %s, %d attempts", time.Since(start).Round(time.Millisecond), attempts)
	if _, err := tier.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := followed(t, tier, 1); len(got) != 2 {
		t.Fatalf("round holds %q, want a and b", got)
	}
	// The killed server comes back on its store and admits the tier's certificate again.
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
}
