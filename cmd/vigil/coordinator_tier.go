package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/internal/flock"
	"github.com/vigilauth/vigil/internal/rpcmetrics"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	"github.com/vigilauth/vigil/store"
)

// tierFlags say where the coordinator tier's JetStream is (issue 16).
type tierFlags struct {
	nats, natsListen, tokenFile string
	natsCA                      string
	blobs                       string
	replicas                    int
	frontend, stateInTier       bool
	leaseTTL                    time.Duration
	handOverEvery               int
}

const (
	natsEmbedded = "embedded"
	natsOff      = "off"
	blobsOff     = "off"
)

func (t *tierFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&t.nats, "nats", natsOff, "the coordinator tier's JetStream: \"off\" (updates go straight into the round's sum: on one machine the tier only costs, about twice the CPU per update), \"embedded\" (a server in this process, its store in DIR/state/jetstream, for frontends), or a cluster's URLs, nats://HOST:PORT[,nats://HOST:PORT...]")
	fs.StringVar(&t.natsListen, "nats-listen", "127.0.0.1:0", "client `address` of the embedded JetStream, for frontends (port 0: any free port, printed at start)")
	fs.StringVar(&t.tokenFile, "nats-token-file", "", "`FILE` holding the secret token of the JetStream servers (default with --nats embedded: DIR/state/nats.token, created at the first start)")
	fs.IntVar(&t.replicas, "nats-replicas", 3, "replicas of the tier's stream and bucket in a cluster (the embedded server holds one)")
	fs.DurationVar(&t.leaseTTL, "lease-ttl", 10*time.Second, "how long the round leader's lease outlives its last renewal: a standby coordinator of the same model waits for it, and a leader that cannot renew it for half of it steps down")
	fs.BoolVar(&t.stateInTier, "state-in-tier", false, "keep the round leader's state directory and model store in the --nats cluster too, so that a standby on another machine, with a --dir of its own, takes over from them (without it, a standby needs the leader's --dir on shared storage)")
	fs.BoolVar(&t.frontend, "frontend", false, "serve as an aggregation frontend of the tier at --nats (a cluster URL): take devices' updates on --listen and store them for the round leader (metrics only with --metrics-listen)")
	fs.IntVar(&t.handOverEvery, "hand-over-every", 32, "with --frontend and --trustee: hand the trustees the updates the frontend took every `N` of them while the round collects, so that the release waits for fewer than N")
	fs.StringVar(&t.blobs, "tier-blobs", "", "keep the bytes of the updates this process stores in the tier in this object store, a `LOCATION` (a directory, or s3://bucket[/prefix] on MinIO, credentials from VIGIL_MINIO_*), and only their hashes in the tier's streams; give the leader, its standbys and every frontend the same, or \"off\": the updates in the streams, which every server of the tier then stores whole (default with --nats embedded: DIR/state/tier-blobs; otherwise off)")
	fs.StringVar(&t.natsCA, "nats-ca", "", "`FILE` of the CA certificates (PEM) of an external --nats cluster's servers, verified with their host names (default: the organisation's CA, and the servers present a coordinator certificate of it, verified without host names)")
}

// tier is the connected tier, and what to stop when the coordinator stops.
type tier struct {
	tier     *cluster.Tier
	url      string // the embedded server's URL, for frontends
	close    func()
	embedded bool
	// dial connects to the tier's servers again, and cfg is the tier's: the lease has a
	// connection of its own, so its renewals never queue behind 3.4 MB updates.
	dial func() (*nats.Conn, error)
	cfg  cluster.Config
	// blobs is where the updates' bytes are (--tier-blobs), for frontends.
	blobs string
}

// tierBlobsDir is the embedded tier's object store for the updates' bytes, in the state
// directory.
const tierBlobsDir = "tier-blobs"

// replicate keeps the leader's state directory and model store in the tier (--state-in-tier):
// it fences off every earlier leader, then makes the local files the tier's (or, the first
// time, gives the tier the local files), and returns what the coordinator calls after each
// write (coordinator.Config.Replicate).
func (t *tier) replicate(ctx context.Context, dir string, stdout io.Writer, reg prometheus.Registerer) (func(context.Context, coordinator.ReplicateScope) error, error) {
	took := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "vigil_state_copy_seconds",
		Help:    "Time to store what changed in the round leader's state directory and model store in the coordinator tier (--state-in-tier): the state directory at each commit (whose acknowledgements wait for it), the store too once a version is stored, and everything at most once a second.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	if err := reg.Register(took); err != nil {
		return nil, err
	}
	state := cluster.Root{Name: "state", Dir: filepath.Join(dir, "state"), Local: func(rel string) bool {
		// The lock and the token are this machine's; the contribution log is rebuilt from
		// the round's stream.
		return rel == stateLockName || rel == "nats.token" || coordinator.RebuiltFromTier(rel) || strings.HasPrefix(rel, "jetstream/") || strings.HasPrefix(rel, tierBlobsDir+"/")
	}, Appended: coordinator.AppendedInPlace}
	store := cluster.Root{Name: "store", Dir: filepath.Join(dir, "store")}
	r, err := cluster.OpenReplica(ctx, t.tier, []cluster.Root{state, store})
	if err != nil {
		return nil, err
	}
	r.Progress = func(seq, last uint64) {
		fmt.Fprintf(stdout, "state: restoring from the tier, message %d of %d\n", seq, last)
	}
	restored, err := r.TakeOver(ctx)
	if err != nil {
		return nil, err
	}
	if restored {
		fmt.Fprintf(stdout, "state: restored %s from the tier\n", dir)
	} else {
		fmt.Fprintf(stdout, "state: %s copied to the tier\n", dir)
	}
	return func(ctx context.Context, scope coordinator.ReplicateScope) error {
		roots := []string{state.Name}
		if scope == coordinator.ReplicateAll {
			roots = nil
		}
		start := time.Now()
		err := r.Sync(ctx, roots...)
		took.Observe(time.Since(start).Seconds())
		return err
	}, nil
}

// tierPingInterval is how often a connection to the tier checks that its server answers (two
// unanswered, and it moves to another server: within 4-6 s of its server hanging; at 5 s, a
// frontend on a frozen server held the devices' updates for 10 s more), and tierWriteTimeout
// how long a write to it may wait.
const (
	tierPingInterval = 2 * time.Second
	tierWriteTimeout = 10 * time.Second
)

// open starts or connects to the tier's JetStream and opens model's tier on it; nil with
// --nats off.
func (t tierFlags) open(ctx context.Context, org, stateDir, model string, log *slog.Logger) (*tier, error) {
	if t.nats == natsOff {
		return nil, nil
	}
	// Every connection of the tier is mutual TLS with the coordinator's certificate (issue 16).
	auth, creds, err := orgCoordinator(org)
	if err != nil {
		return nil, err
	}
	cert, orgCA := creds.TLSCertificate(), auth.CA.Pool()
	clientTLS := cluster.ClientTLS(cert, orgCA, auth.Revocations)
	if t.natsCA != "" {
		if t.nats == natsEmbedded {
			return nil, errors.New("--nats-ca is for an external --nats cluster: the embedded server presents the coordinator's certificate")
		}
		cas, err := pki.ReadCertificates(t.natsCA)
		if err != nil {
			return nil, fmt.Errorf("--nats-ca: %w", err)
		}
		pool := x509.NewCertPool()
		for _, c := range cas {
			pool.AddCert(c)
		}
		clientTLS = cluster.ClientTLSServersCA(cert, pool)
	}
	// A server that hangs keeps its connections open: pinging every few seconds moves a
	// frontend or the leader to another server within about 10 s, not the client's default of
	// 4 minutes (TestTierLeaderLosesItsServer: a device's update refused past the round's
	// deadline). A write it does not read for tierWriteTimeout closes the connection too,
	// rather than the client's default of a minute, with the connection's lock held.
	base := []nats.Option{nats.Name("vigil coordinator"), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.PingInterval(tierPingInterval), nats.MaxPingsOutstanding(2), nats.FlusherTimeout(tierWriteTimeout)}
	opts := append(slices.Clip(base), nats.Secure(clientTLS))
	out := &tier{close: func() {}}
	var embedded *cluster.Embedded
	url, replicas := t.nats, t.replicas
	if t.nats == natsEmbedded {
		token, err := t.token(stateDir, true)
		if err != nil {
			return nil, err
		}
		srv, err := cluster.StartEmbeddedConfig(ctx, cluster.EmbeddedConfig{Dir: stateDir, Addr: t.natsListen, Token: token,
			TLS: cluster.ServerTLS(cert, orgCA, auth.Revocations)}, log)
		if err != nil {
			return nil, fmt.Errorf("--nats embedded: %w", err)
		}
		url, replicas, out.url, out.embedded, embedded = srv.URL(), 1, srv.URL(), true, srv
		out.close = func() { srv.Close() }
		// The leader reaches its own server in memory: TLS and a socket would cost it about a
		// quarter more CPU per update stored and followed (BenchmarkTier100k).
		opts = append(slices.Clip(base), nats.Token(token))
	} else if t.tokenFile != "" {
		token, err := t.token(stateDir, false)
		if err != nil {
			return nil, err
		}
		opts = append(opts, nats.Token(token))
	}
	out.dial = func() (*nats.Conn, error) { return nats.Connect(url, opts...) }
	if embedded != nil {
		out.dial = func() (*nats.Conn, error) { return embedded.ConnectInProcess(opts...) }
	}
	out.cfg = cluster.Config{Model: model, Replicas: replicas}
	if out.blobs = t.blobs; out.blobs == "" && out.embedded {
		// Beside the server's store: the updates' bytes cost the server, which is the
		// leader's own process, 21 ms of CPU each, and a file 1 ms. Absolute, as printed for
		// frontends started elsewhere.
		if out.blobs, err = filepath.Abs(filepath.Join(stateDir, tierBlobsDir)); err != nil {
			out.close()
			return nil, fmt.Errorf("--tier-blobs: %w", err)
		}
	}
	if out.blobs != "" && out.blobs != blobsOff {
		if out.cfg.Blobs, err = openTierBlobs(ctx, out.blobs, !t.frontend, replicas); err != nil {
			out.close()
			return nil, fmt.Errorf("--tier-blobs: %w", err)
		}
	}
	nc, err := out.dial()
	if err != nil {
		out.close()
		switch {
		case errors.Is(err, nats.ErrSecureConnWanted):
			return nil, fmt.Errorf("--nats %s: %w (the tier speaks only mutual TLS: give the servers a tls block, see docs/tier.md)", t.nats, err)
		case errors.Is(err, nats.ErrTLS) && !out.embedded && t.natsCA == "":
			return nil, fmt.Errorf("--nats %s: %w (the servers must present a coordinator certificate of the organisation's CA, or give their CA with --nats-ca FILE; they must admit the coordinator's certificate)", t.nats, err)
		case errors.Is(err, nats.ErrTLS):
			return nil, fmt.Errorf("--nats %s: %w (--nats-ca %s)", t.nats, err, t.natsCA)
		}
		return nil, fmt.Errorf("--nats %s: %w", t.nats, err)
	}
	stopServer := out.close
	out.close = func() { nc.Close(); stopServer() }
	err = cluster.UntilAnswered(ctx, tierAttempt, tierRetry, func(err error) { log.Warn("the tier does not answer; trying again", "err", err) }, func(ctx context.Context) (err error) {
		out.tier, err = cluster.Open(ctx, nc, out.cfg)
		return err
	})
	if err != nil {
		out.close()
		return nil, fmt.Errorf("--nats %s: %w", t.nats, err)
	}
	return out, nil
}

// openTierBlobs opens the object store of --tier-blobs; a leader (create) makes its directory
// or bucket. The tier's updates are deleted once their round ends, so a bucket it creates has no
// object lock, unlike the release regions'. A frontend makes neither: given another location
// than its leader's, it would acknowledge updates the leader cannot read.
//
// A directory's objects are written without syncs only where the records naming them are on
// one server (replicas 1: the embedded JetStream, synced every two minutes): a cluster's
// records are on several machines and survive a crash of the one holding the directory.
func openTierBlobs(ctx context.Context, loc string, create bool, replicas int) (cluster.Blobs, error) {
	newFS := store.NewFS
	if replicas <= 1 {
		newFS = store.NewUnsyncedFS
	}
	cfg, s3, err := tierBlobsLocation(loc)
	switch {
	case err != nil:
		return nil, err
	case !s3 && !create:
		info, err := os.Stat(loc)
		if err == nil && !info.IsDir() {
			err = fmt.Errorf("%s is not a directory", loc)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: give the leader's --tier-blobs, which it creates", err)
		}
		return newFS(loc)
	case !s3:
		return newFS(loc)
	}
	st, err := store.NewMinIO(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	exists, err := st.Client().BucketExists(ctx, st.Bucket())
	switch {
	case err == nil && !exists && !create:
		return nil, fmt.Errorf("%s: no bucket %s: give the leader's --tier-blobs, which it creates", loc, st.Bucket())
	case err == nil && !exists:
		err = st.Client().MakeBucket(ctx, st.Bucket(), minio.MakeBucketOptions{Region: cfg.Region})
		if minio.ToErrorResponse(err).Code == "BucketAlreadyOwnedByYou" {
			err = nil // a standby made it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%s: bucket %s: %w", loc, st.Bucket(), err)
	}
	return st, nil
}

// tierBlobsLocation reads --tier-blobs: a directory, or a MinIO bucket with the environment's
// credentials.
func tierBlobsLocation(loc string) (cfg store.MinIOConfig, s3 bool, err error) {
	cfg, s3, err = s3Location(loc)
	switch {
	case loc == blobsOff:
		return cfg, false, nil
	case err != nil:
		return cfg, s3, fmt.Errorf("%s: %w", loc, err)
	case !s3 && strings.Contains(loc, "://"):
		return cfg, s3, fmt.Errorf("%s: only directories and s3:// locations are supported", loc)
	}
	return cfg, s3, nil
}

// tierAttempt bounds one attempt to open the tier or the lease, and tierRetry is the pause
// between attempts. A coordinator starts, or a standby takes over, just as a server fails,
// while the others elect leaders.
const (
	tierAttempt = 5 * time.Second
	tierRetry   = time.Second
)

// token reads the servers' token; for the embedded server it is created at the first start.
func (t tierFlags) token(stateDir string, create bool) (string, error) {
	path := t.tokenFile
	if path == "" {
		path = filepath.Join(stateDir, "nats.token")
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && create && t.tokenFile == "" {
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			return "", fmt.Errorf("--nats-token-file: %w", err)
		}
		token := hex.EncodeToString(b[:])
		if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("--nats-token-file: %w", err)
		}
		return token, nil
	}
	if err != nil {
		return "", fmt.Errorf("--nats-token-file: %w", err)
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return "", fmt.Errorf("--nats-token-file %s is empty", path)
	}
	return token, nil
}

// runFrontend serves an aggregation frontend until ctx ends.
func runFrontend(ctx context.Context, f coordinatorFlags, stdout io.Writer, logger *slog.Logger) error {
	switch {
	case f.tier.nats == natsEmbedded || f.tier.nats == natsOff:
		return errors.New("coordinator: --frontend needs --nats with the URL of the tier's JetStream (the leader prints it)")
	case f.tier.handOverEvery < 1:
		return fmt.Errorf("coordinator: --hand-over-every %d: want at least 1", f.tier.handOverEvery)
	}
	auth, creds, err := orgCoordinator(f.org)
	if err != nil {
		return err
	}
	var key *he.KeyEpoch
	if !f.plaintext {
		if key, err = orgKey(f.org); err != nil {
			return fmt.Errorf("coordinator: %w", err)
		}
	}
	tr, err := f.tier.open(ctx, f.org, "", "keystroke-ae", logger)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	defer tr.close()
	if err := tr.tier.CheckBlobs(ctx); err != nil {
		return fmt.Errorf("coordinator: --tier-blobs %s: %w (give the frontend the round leader's)", f.tier.blobs, err)
	}
	// The leader's metrics, for a frontend: its updates (vigil_updates_total, stored or
	// rejected by reason), the time each store took, and its gRPC calls, on --metrics-listen.
	reg := newRoleRegistry()
	cfg := coordinator.FrontendConfig{Tier: tr.tier, Key: key, VerifySignatures: true, RequireDevice: true, Logger: logger, Metrics: reg, HandOverEvery: f.tier.handOverEvery}
	if key != nil && len(f.trustees) > 0 {
		if cfg.Trustees, err = dialTrustees(key, f.trustees, creds, auth); err != nil {
			return fmt.Errorf("coordinator: %w", err)
		}
	}
	fe, err := coordinator.NewFrontend(cfg)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	defer fe.Close()
	// Without trustees Run returns at once, and the channel stays quiet.
	parts := make(chan error, 1)
	go func() {
		if err := fe.Run(ctx); err != nil {
			parts <- err
		}
	}()
	rpcm, err := rpcmetrics.New(reg, "server")
	if err != nil {
		return fmt.Errorf("coordinator: metrics: %w", err)
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("coordinator: --listen: %w", err)
	}
	srv, err := transport.ServeCoordinator(lis, fe, creds.TLSCertificate(), auth.CA.Pool(), auth.Revocations, 50, pki.ListenerConfig{}, rpcm.ServerOptions()...)
	if err != nil {
		lis.Close()
		return fmt.Errorf("coordinator: %w", err)
	}
	defer srv.Stop(5 * time.Second)
	fmt.Fprintf(stdout, "frontend listening on %s (storing updates in %s)\n", lis.Addr(), f.tier.nats)
	if cfg.Trustees != nil {
		fmt.Fprintf(stdout, "frontend %s: the trustees verify its updates from it, not from the leader\n", fe.ID())
	}
	// Only when asked: several frontends share a machine, and the default address is the
	// leader's.
	if f.metricsListenSet && f.metricsListen != "" {
		var ready readiness
		stop, addr, err := serveOps(f.metricsListen, reg, &ready, f.pprof)
		if err != nil {
			return fmt.Errorf("coordinator: --metrics-listen: %w", err)
		}
		defer stop()
		ready.set(nil)
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\nhealth on http://%s/healthz and /readyz\n", addr, addr)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-parts:
		return fmt.Errorf("coordinator: serving the leader's part requests: %w", err)
	}
}

// lead takes the round leader's lease of the tier, waiting as a standby while another
// coordinator holds it or the tier does not answer, and returns a context that ends when the
// lease is lost (its cause is then cluster.ErrLeaseLost) and a function giving the lease up.
func (t *tier) lead(ctx context.Context, ttl time.Duration, stdout io.Writer) (context.Context, *cluster.Lease, func(), error) {
	host, _ := os.Hostname()
	nc, err := t.dial()
	if err != nil {
		return nil, nil, nil, err
	}
	var lease *cluster.Lease
	err = cluster.UntilAnswered(ctx, tierAttempt, tierRetry, func(err error) { fmt.Fprintf(stdout, "standby: the tier does not answer (%v); trying again\n", err) }, func(ctx context.Context) error {
		own, err := cluster.Open(ctx, nc, t.cfg)
		if err != nil {
			return err
		}
		lease, err = own.Lease(ctx, fmt.Sprintf("%s pid %d", host, os.Getpid()), ttl)
		return err
	})
	if err == nil {
		if holder, err := lease.Holder(ctx); err == nil && holder != "" {
			fmt.Fprintf(stdout, "standby: waiting for the round leader's lease, held by %s\n", holder)
		}
		err = lease.Acquire(ctx, min(time.Second, ttl/4))
	}
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	leadCtx, stepDown := context.WithCancelCause(ctx)
	held := make(chan struct{})
	go func() {
		defer close(held)
		if err := lease.Hold(leadCtx); errors.Is(err, cluster.ErrLeaseLost) {
			stepDown(err)
		}
	}()
	release := func() {
		stepDown(context.Canceled)
		<-held
		// A lease already lost is not given up: the servers that did not answer its renewal
		// would not answer this either, and the standby waits for the state directory.
		if lease.Valid() == nil {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			lease.Release(rctx)
		}
		nc.Close()
	}
	return leadCtx, lease, release, nil
}

// stateLockName is the state directory's lock file.
const stateLockName = "coordinator.lock"

// lockState takes the state directory's lock for as long as the coordinator runs, waiting
// while another process holds it: a leader frozen past its lease still holds it until it wakes,
// finds the lease gone and exits, so its last write never lands on its successor's state.
func lockState(ctx context.Context, stateDir string, stdout io.Writer) (unlock func(), err error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("--dir: %w", err)
	}
	path := filepath.Join(stateDir, stateLockName)
	for said := false; ; {
		unlock, err := lockFile(path)
		if !errors.Is(err, flock.ErrLocked) {
			return unlock, err
		}
		if !said {
			pid, _ := os.ReadFile(path)
			fmt.Fprintf(stdout, "standby: waiting for the state directory, locked by process %s\n", strings.TrimSpace(string(pid)))
			said = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
