// Package natstest gives tests real nats-server processes: a JetStream cluster on 127.0.0.1
// whose nodes a test kills, stops and restarts by PID, to show what the coordinator tier
// survives when a server dies, not when a context is cancelled. StartClusterTLS makes every
// connection, clients and routes, mutual TLS, as the tier's servers are configured in production.
// The binary comes from $VIGIL_NATS_SERVER (see .ci/nats.sh); without it tests skip, saying why,
// except under CI.
package natstest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilauth/vigil/internal/freeport"
	"github.com/vigilauth/vigil/pki"
)

const (
	// readyTimeout bounds a cluster's start (processes up, routes formed, a JetStream meta
	// leader elected and every node a peer) and a node's restart, on a loaded 2-core machine.
	readyTimeout = 60 * time.Second
	// stopTimeout is how long Stop lets a node shut down gracefully before killing it.
	stopTimeout = 30 * time.Second
	// logTail is how many lines of each node's log a failed test prints.
	logTail = 40
)

// Cluster is a JetStream cluster of nats-server processes that the test owns.
type Cluster struct {
	bin   string
	tls   *TLS // nil: plaintext
	nodes []*node
}

type node struct {
	name string
	dir  string // holds the config file, the store and the log
	url  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
}

// StartCluster starts n nats-server processes from $VIGIL_NATS_SERVER as one JetStream cluster, each
// with its own client and cluster port on 127.0.0.1 and its own store in a temporary directory,
// and returns once the cluster can place a stream on all n nodes. Every node is killed when the
// test ends; when the test failed, the tail of each node's log is printed first. Without
// $VIGIL_NATS_SERVER the test skips, or fails when $CI is set, since CI must run these tests.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	return start(t, n, nil)
}

// TLS makes a cluster speak only mutual TLS, as the coordinator tier's servers do in production:
// TLS 1.3 with X25519MLKEM768 only, to clients and between the servers.
type TLS struct {
	// CertFile and KeyFile are the certificate (chain) and key the servers present to clients
	// (PEM); CAFile is the CA every client certificate must chain to.
	CertFile, KeyFile, CAFile string
	// Users are the identities admitted: the servers map a client's verified certificate to
	// one of these names (verify_and_map: a URI name such as spiffe://vigil/coordinator/ID)
	// and refuse a certificate that names none, however well it chains.
	Users []string
	// Client is the TLS configuration of natstest's own connections (the readiness probe, the
	// check after a restart): a certificate the servers admit. ClientOptions returns it.
	Client *tls.Config
}

// StartClusterTLS is StartCluster with every connection mutual TLS: clients as cfg says, and
// the routes between the servers with a CA of their own, generated here and held only by the
// servers, so that no client certificate can pass for a server. URLs are tls://.
func StartClusterTLS(t testing.TB, n int, cfg TLS) *Cluster {
	t.Helper()
	if cfg.CertFile == "" || cfg.KeyFile == "" || cfg.CAFile == "" || len(cfg.Users) == 0 || cfg.Client == nil {
		t.Fatalf("natstest: TLS needs a certificate, key, CA, users and a client configuration: %+v", cfg)
	}
	return start(t, n, &cfg)
}

func start(t testing.TB, n int, tlsCfg *TLS) *Cluster {
	t.Helper()
	bin := os.Getenv("VIGIL_NATS_SERVER")
	if bin == "" {
		const msg = "VIGIL_NATS_SERVER is not set (build nats-server with .ci/nats.sh: export VIGIL_NATS_SERVER=\"$(bash .ci/nats.sh build)\")"
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI must run the cluster tests")
		}
		t.Skip("skipping: " + msg)
	}
	if n < 1 {
		t.Fatalf("natstest: a cluster of %d nodes", n)
	}
	c := &Cluster{bin: bin, tls: tlsCfg}
	ports, err := freeport.Ports(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i])
	}
	root := t.TempDir()
	var routeTLS *routeFiles
	if tlsCfg != nil {
		var err error
		if routeTLS, err = writeRouteCA(filepath.Join(root, "routes")); err != nil {
			t.Fatal(err)
		}
	}
	scheme := "nats"
	if tlsCfg != nil {
		scheme = "tls"
	}
	for i := range n {
		nd := &node{
			name: fmt.Sprintf("n%d", i),
			dir:  filepath.Join(root, fmt.Sprintf("n%d", i)),
			url:  fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[i]),
		}
		if err := os.MkdirAll(nd.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		conf := config(nd.name, ports[i], ports[n+i], filepath.Join(nd.dir, "store"), routes, tlsCfg, routeTLS)
		if err := os.WriteFile(nd.config(), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.nodes = append(c.nodes, nd)
	}
	// Cleanups run last first: the processes are killed, then the logs printed, then the
	// temporary directory removed.
	t.Cleanup(func() {
		if t.Failed() {
			c.logTails(t)
		}
	})
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.kill()
		}
	})
	for _, nd := range c.nodes {
		if err := nd.start(c.bin); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := c.waitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// ClientOptions are the options a client needs besides the URLs: with TLS, the configuration
// of TLS.Client.
func (c *Cluster) ClientOptions() []nats.Option {
	if c.tls == nil {
		return nil
	}
	return []nats.Option{nats.Secure(c.tls.Client)}
}

// routeFiles are the routes' CA and the one certificate every server presents on its routes.
type routeFiles struct{ cert, key, ca string }

// writeRouteCA makes the routes' CA and a certificate for 127.0.0.1 from it, in dir.
func writeRouteCA(dir string) (*routeFiles, error) {
	now := time.Now()
	ca, err := pki.NewCA("natstest routes", 24*time.Hour, now)
	if err != nil {
		return nil, err
	}
	key, err := pki.GenerateKey()
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue(pki.CertSpec{Identity: pki.Coordinator("natstest-route"), PublicKey: key.Public(),
		Validity: time.Hour, Hosts: []string{"127.0.0.1"}}, now)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.MarshalPrivateKeyPEM(key)
	if err != nil {
		return nil, err
	}
	f := &routeFiles{cert: filepath.Join(dir, "cert.pem"), key: filepath.Join(dir, "key.pem"), ca: filepath.Join(dir, "ca.pem")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for path, data := range map[string][]byte{f.cert: pki.MarshalCertificatesPEM(cert), f.key: keyPEM, f.ca: pki.MarshalCertificatesPEM(ca.Certificate())} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// config is a node's configuration file. max_payload admits the 3.4 MB updates of 100,000
// parameters, as the embedded server does; the stores are bounded so that three nodes on a
// shared machine do not each claim most of its memory and disk. With TLS, clients and routes
// speak TLS 1.3 with the hybrid key exchange only, and a client is admitted only if its
// certificate verifies and names one of the users.
func config(name string, port, clusterPort int, store string, routes []string, tlsCfg *TLS, rt *routeFiles) string {
	var clientTLS, routeTLS string
	if tlsCfg != nil {
		users := make([]string, len(tlsCfg.Users))
		for i, u := range tlsCfg.Users {
			users[i] = fmt.Sprintf("{user: %q}", u)
		}
		clientTLS = fmt.Sprintf(`tls {
  cert_file: %q
  key_file: %q
  ca_file: %q
  verify_and_map: true
  %s
}
authorization {
  users: [%s]
}
`, tlsCfg.CertFile, tlsCfg.KeyFile, tlsCfg.CAFile, tlsCommon, strings.Join(users, ", "))
		routeTLS = fmt.Sprintf(`
  tls {
    cert_file: %q
    key_file: %q
    ca_file: %q
    verify: true
    %s
  }`, rt.cert, rt.key, rt.ca, tlsCommon)
	}
	return fmt.Sprintf(`server_name: %q
listen: "127.0.0.1:%d"
max_payload: 8MB
jetstream {
  store_dir: %q
  max_memory_store: 256MB
  max_file_store: 4GB
}
%scluster {
  name: "vigil-test"
  listen: "127.0.0.1:%d"
  routes: [%s]%s
  ping_interval: "2s"
}
`, name, port, store, clientTLS, clusterPort, strings.Join(quoteAll(routes), ", "), routeTLS)
}

// tlsCommon is what every TLS block of the configuration shares: pki's TLS 1.3 and hybrid key
// exchange, and a handshake timeout for a loaded machine.
const tlsCommon = `min_version: "1.3", curve_preferences: ["X25519MLKEM768"], timeout: 5`

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// waitReady returns once a stream replicated on every node can be created: a meta leader alone
// is not enough, since it is elected by a quorum before the last node has joined.
func (c *Cluster) waitReady(ctx context.Context) error {
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), append(c.ClientOptions(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("natstest: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		err = probe(ctx, js, len(c.nodes))
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natstest: JetStream cluster of %d not ready: %w", len(c.nodes), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func probe(ctx context.Context, js jetstream.JetStream, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return err
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "natstest_probe", Replicas: replicas, Storage: jetstream.MemoryStorage}); err != nil {
		return err
	}
	return js.DeleteStream(ctx, "natstest_probe")
}

// URLs returns every node's client URL, in node order.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i, nd := range c.nodes {
		urls[i] = nd.url
	}
	return urls
}

// URL returns node i's client URL.
func (c *Cluster) URL(i int) string { return c.nodes[i].url }

// Name returns node i's server name, as JetStream reports leaders and replicas.
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Index returns the node whose server name is name, or -1.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// Kill kills node i with SIGKILL, as a crash would, and waits until it has exited.
func (c *Cluster) Kill(i int) error {
	if !c.nodes[i].kill() {
		return fmt.Errorf("natstest: %s is not running", c.nodes[i].name)
	}
	return nil
}

// Stop stops node i with SIGTERM, as an operator would, and waits until it has shut down; it
// kills the node if that takes longer than 30 s.
func (c *Cluster) Stop(i int) error {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return fmt.Errorf("natstest: %s is not running", nd.name)
	}
	defer func() { nd.cmd, nd.done = nil, nil }()
	if err := nd.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("natstest: stop %s: %w", nd.name, err)
	}
	select {
	case <-nd.done:
		return nil
	case <-time.After(stopTimeout):
		_ = nd.cmd.Process.Kill()
		<-nd.done
		return fmt.Errorf("natstest: %s did not stop within %s of SIGTERM; killed", nd.name, stopTimeout)
	}
}

// Freeze stops node i with SIGSTOP, as a hung server or a cut network would look to its
// clients (their connections stay open and nothing answers), and returns what thaws it.
func (c *Cluster) Freeze(i int) (thaw func() error, err error) {
	nd := c.nodes[i]
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return nil, fmt.Errorf("natstest: %s is not running", nd.name)
	}
	p := nd.cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("natstest: freeze %s: %w", nd.name, err)
	}
	return func() error { return p.Signal(syscall.SIGCONT) }, nil
}

// Restart starts node i again on its configuration and store, after Kill or Stop, and waits
// until it accepts clients. It does not wait for the node to catch up with the cluster.
func (c *Cluster) Restart(i int) error {
	nd := c.nodes[i]
	if err := nd.start(c.bin); err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		nc, err := nats.Connect(nd.url, append(c.ClientOptions(), nats.NoReconnect(), nats.Timeout(time.Second))...)
		if err == nil {
			nc.Close()
			return nil
		}
		if !nd.running() {
			return fmt.Errorf("natstest: %s exited after restart; see %s", nd.name, nd.log())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("natstest: %s not reachable %s after restart: %w", nd.name, readyTimeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (nd *node) config() string { return filepath.Join(nd.dir, "nats.conf") }
func (nd *node) log() string    { return filepath.Join(nd.dir, "nats.log") }

// start runs the node's process, appending its output to its log, which a restart marks.
func (nd *node) start(bin string) error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil {
		select {
		case <-nd.done: // exited by itself: a crash the test may restart from
		default:
			return fmt.Errorf("natstest: %s is already running", nd.name)
		}
	}
	log, err := os.OpenFile(nd.log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	fmt.Fprintf(log, "=== natstest: starting %s at %s\n", nd.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, "-c", nd.config())
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("natstest: start %s: %w", nd.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	nd.cmd, nd.done = cmd, done
	return nil
}

// running reports whether the process has not exited.
func (nd *node) running() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and reaps the process; it reports whether one was running.
func (nd *node) kill() bool {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd == nil {
		return false
	}
	_ = nd.cmd.Process.Kill()
	<-nd.done
	nd.cmd, nd.done = nil, nil
	return true
}

func (c *Cluster) logTails(t testing.TB) {
	for _, nd := range c.nodes {
		out, err := os.ReadFile(nd.log())
		if err != nil {
			t.Logf("natstest: %s: %v", nd.name, err)
			continue
		}
		lines := bytes.Split(bytes.TrimRight(out, "\n"), []byte("\n"))
		if len(lines) > logTail {
			lines = lines[len(lines)-logTail:]
		}
		t.Logf("natstest: last %d lines of %s:\n%s", len(lines), nd.log(), bytes.Join(lines, []byte("\n")))
	}
}
