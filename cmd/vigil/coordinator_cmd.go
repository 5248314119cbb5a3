package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/internal/rpcmetrics"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/sim"
	"github.com/vigilauth/vigil/store"
	"github.com/vigilauth/vigil/trustee"
)

type coordinatorFlags struct {
	org, dir, listen, metricsListen      string
	metricsListenSet                     bool // --metrics-listen given: frontends serve metrics only then
	adminListen                          string
	interval                             time.Duration
	rounds, perRound, minUpdates, minEnr int
	releaseEvery, keepVersions           int
	timeout                              time.Duration
	seed                                 uint64
	plaintext, noDP                      bool
	clip, noise, epsilon, delta          float64
	populationNoise                      float64
	mouseNoise, mouseRefNoise            float64
	populationEvery                      int
	tolerated                            int
	policy                               string
	trustees, regions                    listFlag
	layers                               string
	pprof                                bool
	logLevel                             slog.Level
	tier                                 tierFlags
}

// maxDelta bounds the coordinator's --delta: a guarantee that fails with probability 1/1,000
// or more is no guarantee for any fleet large enough to need Vigil.
const maxDelta = 1e-3

func runCoordinator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var f coordinatorFlags
	fs := newFlags("coordinator", stdout, envMinIO...)
	fs.StringVar(&f.org, "org", "", "organisation `DIR` made by vigil setup (required): CA, key epoch, release keys")
	fs.StringVar(&f.dir, "dir", "vigil-coordinator", "directory of the model store (store/) and the coordinator's durable state (state/)")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:7070", "gRPC address to serve devices on (mutual TLS)")
	fs.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:9464", "HTTP address for Prometheus /metrics (empty: off)")
	fs.Var(&f.trustees, "trustee", "a trustee as ID=HOST:PORT (repeatable; all n trustees of the key epoch); a --frontend given them has the trustees verify its updates itself, which the leader would otherwise relay")
	fs.Var(&f.regions, "region", "a release store as NAME=DIR or NAME=s3://bucket/prefix (repeatable; none: no releases)")
	fs.IntVar(&f.releaseEvery, "release-every", 1, "publish a release every K completed rounds")
	fs.IntVar(&f.keepVersions, "keep-versions", 20, "keep the newest `N` model versions in the store (older ones keep only their metadata) and the newest N releases in each region; what a device may still need and what object lock holds are always kept (0: keep all)")
	fs.IntVar(&f.rounds, "rounds", 0, "exit after this many completed rounds (0: run until interrupted)")
	fs.IntVar(&f.perRound, "devices-per-round", 10, "expected number of devices sampled per round")
	fs.IntVar(&f.minUpdates, "min-updates", 2, "fewest updates a round may release (m_min; trustees refuse fewer)")
	fs.IntVar(&f.minEnr, "min-enrolled", 0, "devices to wait for before the first round (default --min-updates)")
	f.timeout = 30 * time.Second
	fs.Var(durationFlag{&f.timeout}, "round-timeout", "how long a round collects updates, e.g. 30s or 2m")
	fs.Var(durationFlag{&f.interval}, "round-interval", "shortest time from the start of one round to the start of the next, e.g. 1m (0: no pause between rounds)")
	fs.StringVar(&f.adminListen, "admin-listen", "", "gRPC `address` of the operators' API for vigil status and vigil admin, e.g. 127.0.0.1:7072 (mutual TLS, operator certificates only; empty: off)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the first global model, when the store has none")
	fs.StringVar(&f.layers, "model-layers", "", "widths of the global autoencoder's layers, e.g. 16,3000,16 (default the keystroke model's)")
	fs.BoolVar(&f.plaintext, "insecure-plaintext", false, "take updates in the clear instead of encrypted (debugging only)")
	fs.Float64Var(&f.clip, "clip", 1, "L2 clip norm C of device updates")
	fs.Float64Var(&f.noise, "noise-multiplier", 1, "noise multiplier z of the differentially private rounds (> 0)")
	fs.Float64Var(&f.populationNoise, "population-noise", 1, "noise multiplier z of the rounds that learn the population model from every device, the first round and every --population-every rounds (0: no population rounds)")
	fs.IntVar(&f.populationEvery, "population-every", 0, "learn the population model again after this many further rounds (0: once)")
	fs.Float64Var(&f.mouseNoise, "mouse-population-noise", 0, "noise multiplier z of the rounds that learn the mouse population model from every device, after a reference round (0: no mouse population rounds; with --insecure-no-dp any value above 0 runs them without noise)")
	fs.Float64Var(&f.mouseRefNoise, "mouse-reference-noise", 0, "noise multiplier z of the mouse population's reference round (0: 3 times --mouse-population-noise, as `vigil eval mouse --epsilon` splits it)")
	fs.Float64Var(&f.epsilon, "epsilon", 10, "privacy budget epsilon of the model: no round starts that would exceed it")
	fs.Float64Var(&f.delta, "delta", 1e-5, "delta of the privacy budget (keep it below 1/enrolled devices)")
	fs.IntVar(&f.tolerated, "tolerated-devices", 0, "malicious devices per round the noise is calibrated against, t_dev < --min-updates (default ceil(m_min/10))")
	fs.StringVar(&f.policy, "privacy-policy", "", "the privacy office's signed privacy policy `FILE` handed to devices with every task (default ORG/"+orgPolicy+")")
	fs.BoolVar(&f.noDP, "insecure-no-dp", false, "release rounds WITHOUT differential privacy; recorded in the ledger and every release, and the model can never be made private again")
	fs.BoolVar(&f.pprof, "pprof", false, "also serve Go's /debug/pprof/ profiles on --metrics-listen")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	f.tier.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return unexpectedArgument("coordinator", fs)
	case f.tier.frontend:
		f.metricsListenSet = setFlag(fs, "metrics-listen")
		if f.org == "" {
			return errors.New("coordinator: --org is required (create one with `vigil setup --dir DIR`)")
		}
		return runFrontend(ctx, f, stdout, newLogger(stderr, f.logLevel))
	case f.pprof && f.metricsListen == "":
		return errors.New("coordinator: --pprof needs --metrics-listen")
	case f.org == "":
		return errors.New("coordinator: --org is required (create one with `vigil setup --dir DIR`)")
	case !(f.clip > 0):
		return fmt.Errorf("coordinator: --clip %v must be positive", f.clip)
	case f.noDP && setFlag(fs, "noise-multiplier"):
		return errors.New("coordinator: --insecure-no-dp conflicts with --noise-multiplier")
	case !f.noDP && !(f.noise > 0):
		return fmt.Errorf("coordinator: --noise-multiplier %v: differential privacy needs z > 0 (to release rounds without it, say --insecure-no-dp)", f.noise)
	case !f.noDP && !(f.epsilon > 0):
		return fmt.Errorf("coordinator: --epsilon %v must be positive", f.epsilon)
	case !f.noDP && !(f.delta > 0 && f.delta <= maxDelta):
		// delta is the chance that the guarantee fails outright: at 1/N one user's data in
		// a fleet of N may be released as it is.
		return fmt.Errorf("coordinator: --delta %v: want a value in (0, %g], and below 1/enrolled devices (1e-5 suits up to 100,000)", f.delta, maxDelta)
	case f.perRound < 1 || f.minUpdates < 1 || f.minUpdates > f.perRound:
		return fmt.Errorf("coordinator: --min-updates %d and --devices-per-round %d: want 1 <= --min-updates <= --devices-per-round", f.minUpdates, f.perRound)
	case !f.plaintext && len(f.trustees) == 0:
		return errors.New("coordinator: encrypted updates need the trustees: give --trustee ID=HOST:PORT for each (or --insecure-plaintext)")
	case !finiteNonNegative(f.populationNoise) || f.noDP && f.populationNoise > 0 && setFlag(fs, "population-noise"):
		return fmt.Errorf("coordinator: --population-noise %v: want z > 0, or 0 for no population rounds (with --insecure-no-dp they have no noise)", f.populationNoise)
	case !finiteNonNegative(f.mouseNoise) || !finiteNonNegative(f.mouseRefNoise) || f.noDP && setFlag(fs, "mouse-reference-noise"):
		return fmt.Errorf("coordinator: --mouse-population-noise %v, --mouse-reference-noise %v: want z > 0, or 0 (with --insecure-no-dp any --mouse-population-noise above 0 turns the rounds on, without noise)", f.mouseNoise, f.mouseRefNoise)
	case f.mouseRefNoise > 0 && f.mouseNoise == 0:
		return errors.New("coordinator: --mouse-reference-noise without --mouse-population-noise: there are no mouse population rounds")
	case f.populationEvery < 0:
		return fmt.Errorf("coordinator: --population-every %d is negative", f.populationEvery)
	case f.tier.stateInTier && (f.tier.nats == natsOff || f.tier.nats == natsEmbedded):
		return fmt.Errorf("coordinator: --state-in-tier needs --nats with a cluster's URLs, not %q: a standby on another machine reaches no other tier", f.tier.nats)
	case f.tier.blobs != "" && f.tier.blobs != blobsOff && f.tier.nats == natsOff:
		return errors.New("coordinator: --tier-blobs needs --nats: without the tier, updates go straight into the round's sum and are stored nowhere")
	case f.releaseEvery < 1:
		return fmt.Errorf("coordinator: --release-every %d must be at least 1", f.releaseEvery)
	case f.keepVersions < 0:
		return fmt.Errorf("coordinator: --keep-versions %d: want 0 (keep every version) or more", f.keepVersions)
	}
	if f.tier.blobs != "" {
		if _, _, err := tierBlobsLocation(f.tier.blobs); err != nil {
			return fmt.Errorf("coordinator: --tier-blobs %w", err)
		}
	}
	logger := newLogger(stderr, f.logLevel)
	auth, creds, err := orgCoordinator(f.org)
	if err != nil {
		return err
	}
	var sealing coordinator.Sealing = coordinator.Insecure{}
	if !f.plaintext {
		if sealing, err = orgSealing(f.org, f.trustees, creds, auth); err != nil {
			return fmt.Errorf("coordinator: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := newRoleRegistry()
	regions, err := newRegionTracker(reg)
	if err != nil {
		return fmt.Errorf("coordinator: metrics: %w", err)
	}
	var populations []*coordinator.PopulationRounds
	if f.populationNoise > 0 {
		z := f.populationNoise
		if f.noDP {
			z = 0
		}
		p, err := sim.PopulationRounds(z, f.populationEvery, sim.PopulationWindow)
		if err != nil {
			return fmt.Errorf("coordinator: %w", err)
		}
		populations = append(populations, p)
	}
	if f.mouseNoise > 0 {
		z, zRef := f.mouseNoise, f.mouseRefNoise
		if zRef == 0 {
			zRef = sim.MouseReferenceNoise(z)
		}
		if f.noDP {
			z, zRef = 0, 0
		}
		p, err := sim.MousePopulationRounds(z, zRef, f.populationEvery)
		if err != nil {
			return fmt.Errorf("coordinator: %w", err)
		}
		populations = append(populations, p)
	}
	enroller, err := pki.NewEnroller(pki.EnrollerConfig{CA: auth.CA, Revocations: auth.Revocations})
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	root, err := orgTrustRoot(f.org)
	if err != nil {
		return fmt.Errorf("coordinator: --org: %w", err)
	}
	st, err := store.NewFS(filepath.Join(f.dir, "store"))
	if err != nil {
		return fmt.Errorf("coordinator: --dir: %w", err)
	}
	privacy := sim.CoordinatorPrivacy(f.noDP, f.clip, f.noise, f.epsilon, f.delta, f.tolerated, filepath.Join(f.dir, "state"))
	var policy []byte
	if !f.noDP {
		path := f.policy
		if path == "" {
			path = filepath.Join(f.org, orgPolicy)
		}
		if policy, err = os.ReadFile(path); err != nil {
			return fmt.Errorf("coordinator: --privacy-policy: %w (devices refuse tasks without the privacy office's signed policy)", err)
		}
	}
	spec := sim.GlobalSpec()
	if f.layers != "" {
		if spec, err = parseLayers(f.layers); err != nil {
			return fmt.Errorf("coordinator: --model-layers: %w", err)
		}
	}
	// Before the tier (the embedded JetStream stores in the state directory) and the lease.
	unlock, err := lockState(ctx, filepath.Join(f.dir, "state"), stdout)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	defer unlock()
	tr, err := f.tier.open(ctx, f.org, filepath.Join(f.dir, "state"), "keystroke-ae", logger)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	var (
		clusterTier *cluster.Tier
		leading     func() error
	)
	if tr != nil {
		defer tr.close()
		clusterTier = tr.tier
	}
	if tr != nil && !tr.embedded {
		// Before the state is read: a standby must not touch it while another leads. An
		// embedded tier is this process's alone (the state directory's lock), so needs none.
		leadCtx, lease, release, err := tr.lead(ctx, f.tier.leaseTTL, stdout)
		if err != nil {
			return fmt.Errorf("coordinator: the round leader's lease: %w", err)
		}
		defer release()
		ctx, leading = leadCtx, lease.Valid
	}
	if tr != nil {
		// As the leader: frontends given another store than this one's are refused at start.
		if err := tr.tier.MarkBlobs(ctx); err != nil {
			return fmt.Errorf("coordinator: --tier-blobs: %w", err)
		}
	}
	var replicate func(context.Context, coordinator.ReplicateScope) error
	switch {
	case f.tier.stateInTier:
		if replicate, err = tr.replicate(ctx, f.dir, stdout, reg); err != nil {
			return fmt.Errorf("coordinator: --state-in-tier: %w", err)
		}
	case tr != nil && !tr.embedded:
		name, held, err := cluster.ReplicaStream(ctx, tr.tier)
		if err != nil {
			return fmt.Errorf("coordinator: %w", err)
		}
		if held {
			return fmt.Errorf("coordinator: the tier holds this model's state, kept by a leader started with --state-in-tier (stream %s): start with --state-in-tier too, or remove that stream first (nats stream rm %s); a later leader with the flag would otherwise restore that older state over this one's", name, name)
		}
	}
	// Only now that this process leads, and its state is the tier's: the outboxes publish
	// what the state directory holds.
	publisher, outboxes, err := orgPublisher(ctx, f, logger, regions, populations)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	coord, err := coordinator.New(ctx, coordinator.Config{
		Spec: spec, FeatureSet: sim.FeatureSet, InitSeed: f.seed, Populations: populations,
		Rounds: f.rounds, DevicesPerRound: f.perRound, MinUpdates: f.minUpdates, MinEnrolled: f.minEnr,
		RoundTimeout: f.timeout, RoundInterval: f.interval, KeepVersions: f.keepVersions, Revocations: auth.Revocations, Store: st, StateDir: filepath.Join(f.dir, "state"), Privacy: privacy,
		PrivacyPolicy: policy, Root: root, Enroller: enroller, Publisher: publisher, Logger: logger, Metrics: reg, Cluster: clusterTier, Leading: leading, Replicate: replicate,
	}, sealing)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	lis, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("coordinator: --listen: %w", err)
	}
	rpcm, err := rpcmetrics.New(reg, "server")
	if err != nil {
		lis.Close()
		return fmt.Errorf("coordinator: metrics: %w", err)
	}
	srv, err := transport.ServeCoordinator(lis, coord, creds.TLSCertificate(), auth.CA.Pool(), auth.Revocations, 50, pki.ListenerConfig{}, rpcm.ServerOptions()...)
	if err != nil {
		lis.Close()
		return fmt.Errorf("coordinator: %w", err)
	}
	// Also on a failed state write: the calls waiting for it are answered NOT_DURABLE, so
	// their devices retry instead of seeing the connection drop.
	defer srv.Stop(5 * time.Second)
	fmt.Fprintf(stdout, "coordinator listening on %s\n", lis.Addr())
	if tr != nil && tr.embedded {
		fmt.Fprintf(stdout, "embedded JetStream on %s (frontends: vigil coordinator --frontend --org %s --listen HOST:PORT --nats %s --nats-replicas 1 --nats-token-file %s --tier-blobs %s)\n",
			tr.url, f.org, tr.url, filepath.Join(f.dir, "state", "nats.token"), tr.blobs)
	}
	fmt.Fprintf(stdout, "%s\nprivacy ledger %s (review it with `vigil privacy report --dir %s`)\n",
		sim.PrivacyLine(privacy, f.minUpdates), privacy.LedgerPath, f.dir)
	if f.adminListen != "" {
		stop, addr, err := serveAdmin(f.adminListen, coord, auth, creds, rpcm, regions)
		if err != nil {
			return fmt.Errorf("coordinator: --admin-listen: %w", err)
		}
		defer stop()
		fmt.Fprintf(stdout, "operators' API on %s (`vigil status --operator %s --coordinator %s`)\n", addr, filepath.Join(f.org, "operators", "NAME"), addr)
	}
	var ready readiness
	if f.metricsListen != "" {
		stop, addr, err := serveOps(f.metricsListen, reg, &ready, f.pprof)
		if err != nil {
			return fmt.Errorf("coordinator: --metrics-listen: %w", err)
		}
		defer stop()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\nhealth on http://%s/healthz and /readyz\n", addr, addr)
	}
	ready.set(nil)
	err = coord.Run(ctx)
	ready.set(errors.New("stopping"))
	switch {
	case errors.Is(err, cluster.ErrLeaseLost):
		err = fmt.Errorf("stepped down: %w; what the tier acknowledged is kept for the next leader", err)
	case errors.Is(context.Cause(ctx), cluster.ErrLeaseLost):
		err = fmt.Errorf("stepped down: %w; what the tier acknowledged is kept for the next leader", context.Cause(ctx))
	case errors.Is(err, context.Canceled):
		// SIGTERM or SIGINT: everything acknowledged is on disk; a restart resumes the round.
		err = nil
	case errors.Is(err, dp.ErrBudgetExhausted):
		fmt.Fprintf(stdout, "privacy budget reached: %v\n", err)
		err = nil
	case errors.Is(err, coordinator.ErrTrusteesAhead):
		err = fmt.Errorf("--dir %s: %w\n  The trustees served another state directory of this organisation: start the coordinator on that one (or its backup), never a fresh one", f.dir, err)
	case err != nil:
		// Fatal: the exit status says so, after the outbox has had its chance below.
		logger.Error("coordinator stopped", "err", err)
	}
	for _, outbox := range outboxes {
		// Releases not yet published are safe in the outbox and go out at the next start; a
		// clean stop still tries once, so that a finished run leaves the regions complete.
		flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if ferr := outbox.Flush(flushCtx); ferr != nil {
			fmt.Fprintf(stdout, "releases left in the outbox for the next start: %v\n", ferr)
		}
		cancelFlush()
	}
	g := coord.Global()
	fmt.Fprintf(stdout, "stopped after %d rounds; global model v%d in %s\n", coord.Completed(), g.Meta.Version, f.dir)
	if peak, ok := peakRSS(); ok {
		fmt.Fprintf(stdout, "peak memory %d MiB\n", peak>>20)
	}
	return err
}

// orgTrustRoot reads the organisation's root of trust: the coordinator enrols only devices whose
// record its enrolment role signed.
func orgTrustRoot(org string) (*release.Root, error) {
	data, err := os.ReadFile(filepath.Join(org, orgRoot))
	if err != nil {
		return nil, err
	}
	root, err := release.ParseTrustedRoot(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", orgRoot, err)
	}
	return root, nil
}

// parseLayers reads comma-separated layer widths into an autoencoder spec.
func parseLayers(s string) (models.Spec, error) {
	var layers []int
	for _, f := range strings.Split(s, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return models.Spec{}, fmt.Errorf("%q is not a list of integers", s)
		}
		layers = append(layers, w)
	}
	spec := models.Spec{Layers: layers, Activation: models.Tanh}
	return spec, spec.Validate()
}

// peakRSS returns the process's peak resident memory (Linux VmHWM).
func peakRSS() (uint64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// orgCoordinator opens the organisation's certificate authority and the coordinator's
// credentials, which its frontends present too.
func orgCoordinator(org string) (*pki.Authority, pki.Credentials, error) {
	auth, err := pki.OpenAuthority(filepath.Join(org, orgPKI))
	if err != nil {
		return nil, pki.Credentials{}, fmt.Errorf("coordinator: --org: %w", err)
	}
	creds, err := auth.CoordinatorCredentials()
	if err != nil {
		return nil, pki.Credentials{}, fmt.Errorf("coordinator: --org: %w", err)
	}
	return auth, creds, nil
}

// orgKey reads the organisation's key epoch.
func orgKey(org string) (*he.KeyEpoch, error) {
	pk, err := os.ReadFile(filepath.Join(org, orgKeyEpoch))
	if err != nil {
		return nil, fmt.Errorf("--org: %w", err)
	}
	key, err := he.ParseKeyEpoch(he.DefaultParams(), pk)
	if err != nil {
		return nil, fmt.Errorf("--org: %s: %w", orgKeyEpoch, err)
	}
	return key, nil
}

// orgSealing connects to the trustees over mutual TLS and returns the encrypted sealing of the
// organisation's key epoch.
func orgSealing(org string, trustees []string, creds pki.Credentials, auth *pki.Authority) (coordinator.Sealing, error) {
	key, err := orgKey(org)
	if err != nil {
		return nil, err
	}
	doc, err := os.ReadFile(filepath.Join(org, orgKeyEpochDoc))
	if err != nil {
		return nil, fmt.Errorf("--org: %w", err)
	}
	tc, err := dialTrustees(key, trustees, creds, auth)
	if err != nil {
		return nil, err
	}
	return coordinator.NewThresholdHE(key, doc, tc)
}

// dialTrustees connects to the --trustee flags' trustees of key over mutual TLS, presenting the
// coordinator's credentials (a frontend presents them too).
func dialTrustees(key *he.KeyEpoch, trustees []string, creds pki.Credentials, auth *pki.Authority) (*trustee.Client, error) {
	cert := creds.TLSCertificate()
	var clients []vigilv1.TrusteeClient
	var ids []string
	named := map[string]bool{}
	for _, t := range trustees {
		id, addr, ok := strings.Cut(t, "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("--trustee %q: want ID=HOST:PORT", t)
		}
		// Checked here: a trustee the key epoch does not name, or one named twice, left the
		// coordinator running without ever starting a round.
		if !slices.ContainsFunc(key.Trustees, func(k he.Trustee) bool { return k.ID == id }) {
			return nil, fmt.Errorf("--trustee %q: key epoch %d has no trustee %q; its trustees are %s", t, key.Epoch, id, trusteeIDs(key))
		}
		if named[id] {
			return nil, fmt.Errorf("--trustee %q: trustee %q is given twice", t, id)
		}
		named[id] = true
		conn, err := grpc.NewClient(addr,
			grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(&cert, auth.CA.Pool(), pki.Trustee(id)))),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(trustee.MaxMessageBytes), grpc.MaxCallSendMsgSize(trustee.MaxMessageBytes)))
		if err != nil {
			return nil, fmt.Errorf("--trustee %q: %w", t, err)
		}
		clients = append(clients, vigilv1.NewTrusteeClient(conn))
		ids = append(ids, id)
	}
	// As an unknown id: with fewer trustees than a round needs commitments from, the
	// coordinator ran, its status and readiness green, and refused every round.
	if need := max(trustee.Quorum(len(key.Trustees), key.Threshold), key.Threshold); len(ids) < need {
		var missing []string
		for _, k := range key.Trustees {
			if !named[k.ID] {
				missing = append(missing, k.ID)
			}
		}
		return nil, fmt.Errorf("--trustee: key epoch %d has trustees %s, and a round needs commitments from %d of them (%d-of-%d); given %d, missing %s (give every trustee, as --trustee ID=HOST:PORT)",
			key.Epoch, trusteeIDs(key), need, key.Threshold, len(key.Trustees), len(ids), strings.Join(missing, ", "))
	}
	tc, err := trustee.NewClient(trustee.ClientConfig{Key: key, Trustees: clients, IDs: ids})
	if err != nil {
		return nil, fmt.Errorf("--trustee: %w", err)
	}
	return tc, nil
}

// orgPublisher returns the release publisher for the --region stores, with the organisation's
// release and timestamp keys, and its outbox, which it runs until ctx ends; nil without regions.
func orgPublisher(ctx context.Context, f coordinatorFlags, logger *slog.Logger, tracker *regionTracker, populations []*coordinator.PopulationRounds) (coordinator.Publisher, []*release.Outbox, error) {
	if len(f.regions) == 0 {
		return nil, nil, nil
	}
	var regions []release.Region
	for _, r := range f.regions {
		name, loc, ok := strings.Cut(r, "=")
		if !ok || name == "" || loc == "" {
			return nil, nil, fmt.Errorf("--region %q: want NAME=DIR or NAME=s3://bucket/prefix", r)
		}
		st, err := openStore(ctx, loc, true)
		if err != nil {
			return nil, nil, fmt.Errorf("--region %s: %w", name, err)
		}
		regions = append(regions, release.Region{Name: name, Store: st})
	}
	relKey, err := sig.ReadPrivateKeyFile(filepath.Join(f.org, orgKeys, "release.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("--org: %w", err)
	}
	tsKey, err := sig.ReadPrivateKeyFile(filepath.Join(f.org, orgKeys, "timestamp.key"))
	if err != nil {
		return nil, nil, fmt.Errorf("--org: %w", err)
	}
	root, err := os.ReadFile(filepath.Join(f.org, orgRoot))
	if err != nil {
		return nil, nil, fmt.Errorf("--org: %w", err)
	}
	pub, err := release.NewPublisher(release.PublisherConfig{})
	if err != nil {
		return nil, nil, err
	}
	if err := pub.PublishRoot(ctx, regions, root); err != nil {
		logger.Warn("root of trust not yet in every region; devices there cannot verify until it is", "err", err)
	}
	// One outbox per model: an outbox signs one model's pointers. A population model is
	// released whenever its round completes; --release-every paces the global model.
	pubs := coordinator.PublishersByModel{}
	var outboxes []*release.Outbox
	type outbox struct {
		name, dir string
		every     int
	}
	models := []outbox{{sim.AutoencoderModel, "outbox", f.releaseEvery}}
	for _, p := range populations {
		dir := "outbox-population" // the keystroke population's, named before there were others
		if p.ModelName != sim.PopulationModel {
			dir = "outbox-" + p.ModelName
		}
		models = append(models, outbox{p.ModelName, dir, 1})
	}
	for _, m := range models {
		ob, err := release.NewOutbox(release.OutboxConfig{
			Dir: filepath.Join(f.dir, "state", m.dir), Model: m.name, Regions: regions,
			ReleaseKey: relKey, TimestampKey: tsKey, Root: root, Keep: f.keepVersions,
			Events: func(e release.OutboxEvent) {
				if m.name == sim.AutoencoderModel {
					tracker.record(e) // the region status follows the global model
				}
				logPruned(logger, e)
				if e.Err != nil {
					logger.Warn("release not published", "model", m.name, "region", e.Region, "version", e.Version, "failures", e.Failures, "err", e.Err)
				} else if !e.Refresh {
					logger.Info("release published", "model", m.name, "region", e.Region, "version", e.Version)
				}
			},
		})
		if err != nil {
			return nil, nil, err
		}
		go ob.Run(ctx)
		if pubs[m.name], err = coordinator.NewReleasePublisher(ob, coordinator.ReleasePublisherConfig{Every: uint64(m.every)}); err != nil {
			return nil, nil, err
		}
		outboxes = append(outboxes, ob)
	}
	return pubs, outboxes, nil
}

func serveMetrics(addr string, reg *prometheus.Registry, profiles bool) (stop func(), bound string, err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if profiles {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(lis)
	return func() { hs.Close() }, lis.Addr().String(), nil
}

// finiteNonNegative reports whether x is a number at least 0: NaN, which compares false with
// everything, turned population rounds off instead of being refused.
func finiteNonNegative(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }

// trusteeIDs lists key's trustees, for messages.
func trusteeIDs(key *he.KeyEpoch) string {
	ids := make([]string, len(key.Trustees))
	for i, t := range key.Trustees {
		ids[i] = t.ID
	}
	return strings.Join(ids, ", ")
}
