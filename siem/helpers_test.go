package siem

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilauth/vigil/guard"
)

// testPKI is a CA and a server certificate for 127.0.0.1 signed by it.
type testPKI struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate // for collectors that require a client certificate
	caFile string          // the CA in PEM
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test collector CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ckey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cleaf := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "exporter"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	cder, err := x509.CreateCertificate(rand.Reader, cleaf, caCert, &ckey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testPKI{pool: pool, server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		client: tls.Certificate{Certificate: [][]byte{cder}, PrivateKey: ckey}, caFile: caFile}
}

// received counts the events a collector received, by metadata.uid, checking each against
// the OCSF rules.
type received struct {
	mu      sync.Mutex
	t       testing.TB
	byUID   map[string]int
	events  map[string]Event
	invalid []string
}

func newReceived(t testing.TB) *received {
	return &received{t: t, byUID: map[string]int{}, events: map[string]Event{}}
}

func (r *received) add(line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := Validate(line); err != nil {
		r.invalid = append(r.invalid, err.Error())
		return
	}
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		r.invalid = append(r.invalid, err.Error())
		return
	}
	r.byUID[ev.Metadata.UID]++
	r.events[ev.Metadata.UID] = ev
}

// waitAll waits until every uid in want arrived at least once.
func (r *received) waitAll(want []string, timeout time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		var missing []string
		for _, u := range want {
			if r.byUID[u] == 0 {
				missing = append(missing, u)
			}
		}
		invalid := append([]string(nil), r.invalid...)
		r.mu.Unlock()
		if len(invalid) > 0 {
			r.t.Fatalf("collector received invalid events: %v", invalid[0])
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d events never arrived (first %s)", len(missing), len(want), missing[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *received) count() (unique, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.byUID {
		unique++
		total += n
	}
	return
}

// hecCollector is a Splunk-HEC-compatible endpoint that can be stopped and started again on
// the same address.
type hecCollector struct {
	t     testing.TB
	pki   *testPKI
	token string
	addr  string
	srv   *httptest.Server
	got   *received
	posts int
	mu    sync.Mutex
	// refuse, when not 0, is the HTTP status every request gets instead of being read.
	refuse atomic.Int32
}

func newHECCollector(t testing.TB, pki *testPKI, token string) *hecCollector {
	c := &hecCollector{t: t, pki: pki, token: token, addr: "127.0.0.1:0", got: newReceived(t)}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *hecCollector) url() string { return "https://" + c.addr }

func (c *hecCollector) start() {
	c.t.Helper()
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger for a moment after stop
		if l, err = net.Listen("tcp", c.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("listen %s: %v", c.addr, err)
	}
	c.addr = l.Addr().String()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	srv.Listener = l
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.pki.server}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes refused on purpose
	srv.StartTLS()
	c.srv = srv
}

func (c *hecCollector) stop() {
	if c.srv != nil {
		c.srv.CloseClientConnections()
		c.srv.Close()
		c.srv = nil
	}
}

func (c *hecCollector) serve(w http.ResponseWriter, r *http.Request) {
	if code := int(c.refuse.Load()); code != 0 {
		http.Error(w, `{"text":"Server is busy","code":9}`, code)
		return
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/services/collector/event":
		http.Error(w, `{"text":"Not found","code":404}`, http.StatusNotFound)
		return
	case r.Header.Get("Authorization") != "Splunk "+c.token:
		http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusForbidden)
		return
	}
	c.mu.Lock()
	c.posts++
	c.mu.Unlock()
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(nil, 2*MaxEventBytes)
	for sc.Scan() {
		var env struct {
			SourceType string `json:"sourcetype"`
		}
		event, enveloped, err := EventOf(sc.Bytes())
		if err != nil || !enveloped || json.Unmarshal(sc.Bytes(), &env) != nil || env.SourceType != "ocsf" {
			http.Error(w, `{"text":"Invalid data format","code":6}`, http.StatusBadRequest)
			return
		}
		c.got.add(event)
	}
	io.WriteString(w, `{"text":"Success","code":0}`)
}

// syslogCollector is an RFC 5425 receiver (TLS, octet counting) that can be stopped and
// started again on the same address.
type syslogCollector struct {
	t     testing.TB
	pki   *testPKI
	addr  string
	l     net.Listener
	got   *received
	mu    sync.Mutex
	conns map[net.Conn]bool
	wg    sync.WaitGroup
	bad   []string
	// mutual, when set before start, makes the listener require a client certificate from
	// the test CA.
	mutual bool
}

func newSyslogCollector(t testing.TB, pki *testPKI) *syslogCollector {
	c := &syslogCollector{t: t, pki: pki, addr: "127.0.0.1:0", got: newReceived(t), conns: map[net.Conn]bool{}}
	c.start()
	t.Cleanup(c.stop)
	return c
}

func (c *syslogCollector) start() {
	c.t.Helper()
	var err error
	for i := 0; i < 50; i++ {
		cfg := &tls.Config{Certificates: []tls.Certificate{c.pki.server}}
		if c.mutual {
			cfg.ClientAuth, cfg.ClientCAs = tls.RequireAndVerifyClientCert, c.pki.pool
		}
		if c.l, err = tls.Listen("tcp", c.addr, cfg); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("listen %s: %v", c.addr, err)
	}
	c.addr = c.l.Addr().String()
	c.wg.Add(1)
	go func(l net.Listener) {
		defer c.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			c.conns[conn] = true
			c.mu.Unlock()
			c.wg.Add(1)
			go c.read(conn)
		}
	}(c.l)
}

func (c *syslogCollector) stop() {
	if c.l == nil {
		return
	}
	c.l.Close()
	c.l = nil
	c.mu.Lock()
	for conn := range c.conns {
		conn.Close()
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// read parses octet-counted frames: "LEN SP <PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG".
func (c *syslogCollector) read(conn net.Conn) {
	defer c.wg.Done()
	defer func() {
		c.mu.Lock()
		delete(c.conns, conn)
		c.mu.Unlock()
		conn.Close()
	}()
	br := bufio.NewReader(conn)
	for {
		lenText, err := br.ReadString(' ')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSuffix(lenText, " "))
		if err != nil || n <= 0 || n > 2*MaxEventBytes {
			c.fail("bad frame length " + lenText)
			return
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(br, msg); err != nil {
			return
		}
		fields := strings.SplitN(string(msg), " ", 8)
		if len(fields) != 8 || !strings.HasPrefix(fields[0], "<") || !strings.HasSuffix(fields[0], ">1") ||
			fields[3] != "vigil" || !strings.HasPrefix(fields[5], "ocsf-") || fields[6] != "-" {
			c.fail("bad RFC 5424 header: " + string(msg[:min(len(msg), 80)]))
			return
		}
		if _, err := time.Parse(time.RFC3339Nano, fields[1]); err != nil {
			c.fail("bad timestamp " + fields[1])
			return
		}
		c.got.add([]byte(fields[7]))
	}
}

func (c *syslogCollector) fail(s string) {
	c.mu.Lock()
	c.bad = append(c.bad, s)
	c.mu.Unlock()
	c.t.Error("syslog collector: " + s)
}

// testDecisions returns n guard decisions (a third of them denied) and n transitions, with the
// metadata.uid each should arrive under.
func testDecisions(n int, base time.Time) ([]guard.Decision, []guard.Transition, []string) {
	var ds []guard.Decision
	var ts []guard.Transition
	var uids []string
	for i := range n {
		at := base.Add(time.Duration(i) * time.Millisecond)
		d := guard.Decision{Allow: i%3 != 0, Outcome: guard.OutcomeAllowed, Session: "s" + strconv.Itoa(i%7),
			User: "user" + strconv.Itoa(i%5), Resource: "transfer", Tier: guard.TierMonitor, Trust: 80, Required: 70, At: at,
			Reasons: []guard.Reason{{Signal: guard.SignalBehaviour, Impact: -3, Text: "typing unlike the owner's"}}}
		if !d.Allow {
			d.Outcome, d.Trust = guard.OutcomeLowTrust, 40
		}
		tr := guard.Transition{Kind: guard.TransitionChallengeIssued, Session: d.Session, User: d.User, At: at,
			From: guard.TierMonitor, To: guard.TierSoft, Trust: 40, Challenge: uint64(i + 1)}
		ds, ts = append(ds, d), append(ts, tr)
		uids = append(uids, FromDecision(Source{}, auditDecision(&d), 0).Metadata.UID,
			FromSession(Source{}, auditSession(&tr), 0).Metadata.UID)
	}
	return ds, ts, uids
}

// runExporter runs e until the test ends or stop is called, and returns stop, which waits for
// Run and fails the test on its error.
func runExporter(t testing.TB, e *Exporter) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
