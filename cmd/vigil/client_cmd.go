package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/internal/rpcmetrics"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/sim"
)

type clientFlags struct {
	addr, id, dir, ca, token, root, regionStore, aaltoFile string
	enrol, enrolCA, region                                 string
	metricsListen                                          string
	frontends                                              listFlag
	synthSeed                                              uint64
	windows, window, rounds                                int
	epsilon, delta, minNoise                               float64
	poll                                                   time.Duration
	plaintext, noDP                                        bool
	logLevel                                               slog.Level
}

func runClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseClientFlags(args, stderr)
	if err != nil {
		return err
	}
	var data sim.Device
	if f.aaltoFile != "" {
		if data, err = sim.AaltoFileDevice(f.id, f.aaltoFile, f.window); err != nil {
			return fmt.Errorf("client: --aalto-file: %w", err)
		}
	} else if data, err = sim.SyntheticDevice(f.id, f.synthSeed, f.windows, f.window); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	logger := newLogger(stderr, f.logLevel)
	var root []byte
	if f.root != "" {
		if root, err = os.ReadFile(f.root); err != nil {
			return fmt.Errorf("client: --root: %w", err)
		}
	}
	reg := newRoleRegistry()
	rpcm, err := rpcmetrics.New(reg, "client")
	if err != nil {
		return fmt.Errorf("client: metrics: %w", err)
	}
	contributed := prometheus.NewCounter(prometheus.CounterOpts{Name: "vigil_client_rounds_total", Help: "Rounds this device sent an update to."})
	reg.MustRegister(contributed)
	var ready readiness
	if f.metricsListen != "" {
		stop, addr, err := serveOps(f.metricsListen, reg, &ready, false)
		if err != nil {
			return fmt.Errorf("client: --metrics-listen: %w", err)
		}
		defer stop()
		fmt.Fprintf(stdout, "metrics on http://%s/metrics\n", addr)
	}
	// Locked before anything in it is read: loading the identity finishes a credentials save
	// a crash interrupted, which would take a running client's renewal for one. A directory
	// made here is removed if the run fails before the device's signing key is written, so
	// that a mistaken flag leaves none; from then on it is kept, since the key may already be
	// registered, and the device record the token bought can be had only once: the next run
	// resumes from them without a new token.
	made := firstMissing(f.dir)
	unlock, err := lockDeviceDir("--dir", f.dir)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	defer unlock()
	conn, frontends, id, err := deviceConnection(ctx, f, root, stdout, rpcm.DialOptions()...)
	if err != nil {
		if made != "" && !holdsEnrolment(filepath.Join(f.dir, "identity")) {
			os.RemoveAll(made)
		}
		return err
	}
	defer conn.Close()
	api := vigilv1.NewCoordinatorClient(conn)
	var (
		sealer client.Sealer = client.InsecurePlaintext{}
		keys   *client.SignedKeys
	)
	if !f.plaintext {
		if keys, err = client.NewSignedKeys(api, root, nil); err != nil {
			return fmt.Errorf("client: --root: %w", err)
		}
		if err := keys.PersistTo(filepath.Join(f.dir, client.KeyEpochFloorFile)); err != nil {
			return fmt.Errorf("client: --dir: %w", err)
		}
		sealer = client.NewThresholdSealer(f.id, keys)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg := client.Config{
		DeviceID: f.id, Identity: id, Coordinator: api, Frontends: frontends, Data: data, Sealer: sealer,
		FeatureSet: sim.FeatureSet, Seed: f.synthSeed, MinNoiseMultiplier: f.minNoise, Logger: logger,
	}
	var newestRoot func() []byte // the updater's, which follows the root's rotations
	if f.regionStore != "" {
		u, err := startUpdater(ctx, f, root, data.HeldOut, stdout)
		if err != nil {
			return err
		}
		newestRoot = u.Root
		if keys != nil {
			keys.Follow(newestRoot)
		}
		// The coordinator learns which release the device runs, never what its shadow
		// scoring found: that is derived from the user's typing.
		cfg.Installed = installedVersions(u)
	}
	if f.noDP {
		// A device that takes part in rounds without noise has no finite privacy loss to keep.
		fmt.Fprintln(stdout, "INSECURE: taking part in rounds WITHOUT differential privacy (--insecure-no-dp); no device ledger")
	} else {
		if cfg.Ledger, err = sim.DeviceLedger(f.dir, f.id, f.epsilon, f.delta); err != nil {
			return fmt.Errorf("client: --epsilon: %w", err)
		}
		fmt.Fprintf(stdout, "device privacy ledger %s: budget epsilon %g at delta %g\n", cfg.Ledger.Path(), f.epsilon, f.delta)
		// Every task must keep to the privacy policy signed under the pinned root (or the
		// newer one the updater verified from it): the
		// coordinator cannot lower the device's noise by lying about m_min or z.
		if len(root) == 0 {
			return errors.New("client: --root is required: tasks are held to the privacy policy signed under it (or run --insecure-no-dp)")
		}
		trusted, err := release.ParseTrustedRoot(root)
		if err != nil {
			return fmt.Errorf("client: --root: %w", err)
		}
		if cfg.Policy, err = client.NewPolicyGuard(trusted, nil); err != nil {
			return fmt.Errorf("client: --root: %w", err)
		}
		if err := cfg.Policy.PersistTo(filepath.Join(f.dir, client.PolicyFloorFile)); err != nil {
			return fmt.Errorf("client: --dir: %w", err)
		}
		if newestRoot != nil {
			cfg.Policy.Follow(newestRoot)
		}
	}
	agent, err := client.New(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ready.set(nil)
	err = agent.RunRounds(ctx, f.rounds, func(r client.Result) {
		contributed.Inc()
		fmt.Fprintf(stdout, "submitted round %d (%d updates in), %s\n", r.Round, r.Accepted, localLoss(r.TrainLoss))
	})
	switch {
	case errors.Is(err, context.Canceled):
		return nil
	case errors.Is(err, dp.ErrBudgetExhausted):
		fmt.Fprintf(stdout, "stopped taking part: %v\n", err)
		return nil
	case vigilv1.Reason(err) == pki.ReasonRevoked:
		// The identity in --dir is the revoked one, and a saved identity is used whatever
		// --token says: enrolling again starts from a directory without it.
		return fmt.Errorf("%w; to enrol again, move %s away (the privacy ledger and models in %s stay) and run with a token issued after the revocation",
			err, filepath.Join(f.dir, "identity"), f.dir)
	}
	return err
}

func parseClientFlags(args []string, stderr io.Writer) (clientFlags, error) {
	var f clientFlags
	fs := newFlags("client", stderr, envMinIO...)
	fs.StringVar(&f.addr, "coordinator", "127.0.0.1:7070", "gRPC address of the coordinator")
	addFrontendFlag(fs, &f.frontends)
	fs.StringVar(&f.metricsListen, "metrics-listen", "", "HTTP `address` for Prometheus /metrics, /healthz and /readyz (empty: off)")
	fs.StringVar(&f.id, "device-id", "", "this device's ID (required)")
	fs.StringVar(&f.dir, "dir", "", "this device's state `directory`: identity, privacy ledger, installed models (default vigil-device-ID)")
	fs.StringVar(&f.ca, "ca", "", "the organisation's CA certificate (PEM), to trust the coordinator when enrolling")
	fs.StringVar(&f.enrol, "enrol", "", "gRPC `address` of the enrolment authority (vigil enrol serve; first run only)")
	fs.StringVar(&f.enrolCA, "enrol-ca", "", "the enrolment authority's TLS CA certificate (ORG/enrol/ca.pem; first run only)")
	fs.StringVar(&f.token, "token", "", "one-time enrolment `token` from the enrolment authority (first run only; vigil enrol token)")
	fs.StringVar(&f.region, "region", "", "the region this device's data stays in, which its device record names (first run only)")
	fs.StringVar(&f.root, "root", "", "the organisation's pinned root of trust (root.json), to verify key epochs and releases")
	fs.StringVar(&f.regionStore, "region-store", "", "this device's region store (DIR or s3://bucket/prefix): keep the installed model up to date from it")
	fs.DurationVar(&f.poll, "poll", time.Minute, "how often to poll the region store for releases")
	fs.Uint64Var(&f.synthSeed, "synthetic-seed", 0, "type as the synthetic user with this seed")
	fs.StringVar(&f.aaltoFile, "aalto-file", "", "type as the participant of this Aalto keystroke file")
	fs.IntVar(&f.windows, "windows", 40, "windows of typing the synthetic user produces")
	fs.IntVar(&f.window, "window", 50, "keystrokes per window")
	fs.IntVar(&f.rounds, "rounds", 0, "exit after contributing to this many rounds (0: run until interrupted)")
	fs.Float64Var(&f.epsilon, "epsilon", 16, "this device's own privacy budget, kept in its ledger (every contributed round charged without amplification)")
	fs.Float64Var(&f.delta, "delta", 1e-5, "delta of the device's privacy budget")
	fs.Float64Var(&f.minNoise, "min-noise-multiplier", 0.5, "refuse tasks asking for less noise than this")
	fs.BoolVar(&f.noDP, "insecure-no-dp", false, "take part in rounds WITHOUT differential privacy (no noise); for debugging only")
	fs.BoolVar(&f.plaintext, "insecure-plaintext", false, "send updates in the clear (debugging only)")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, unexpectedArgument("client", fs)
	case f.id == "":
		return f, errors.New("client: --device-id is required")
	case (f.synthSeed == 0) == (f.aaltoFile == ""):
		return f, errors.New("client: give exactly one of --synthetic-seed (non-zero) and --aalto-file")
	case f.window < 10 || f.windows < 4:
		return f, fmt.Errorf("client: --window %d or --windows %d too small", f.window, f.windows)
	case f.root == "" && (!f.plaintext || f.regionStore != ""):
		return f, errors.New("client: --root is required: the device verifies key epochs and releases against it")
	}
	if err := vigilv1.ValidID("--device-id", f.id); err != nil {
		return f, fmt.Errorf("client: %w", err)
	}
	if f.dir == "" {
		f.dir = "vigil-device-" + f.id
	}
	switch {
	case f.noDP && setFlag(fs, "min-noise-multiplier"):
		return f, errors.New("client: --insecure-no-dp conflicts with --min-noise-multiplier")
	case f.noDP:
		f.minNoise = 0
	case !(f.minNoise > 0):
		return f, fmt.Errorf("client: --min-noise-multiplier %v: must be positive (to accept tasks without noise, say --insecure-no-dp)", f.minNoise)
	}
	if !(f.epsilon > 0) {
		return f, fmt.Errorf("client: --epsilon %v must be positive", f.epsilon)
	}
	if !(f.delta > 0 && f.delta <= maxDelta) {
		return f, fmt.Errorf("client: --delta %v: want a value in (0, %g]", f.delta, maxDelta)
	}
	return f, nil
}

// firstMissing returns the outermost directory of dir's path that does not exist yet, which
// making dir creates; "" if dir exists.
func firstMissing(dir string) string {
	missing := ""
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			return missing
		}
		missing = d
		if filepath.Dir(d) == d {
			return missing
		}
	}
}

// holdsEnrolment reports whether the identity directory idDir holds the device's signing key
// or its device record, or may (anything but a clear "not there" counts as holding them).
func holdsEnrolment(idDir string) bool {
	for _, name := range []string{client.SigningKeyFile, client.RecordFile} {
		if _, err := os.Lstat(filepath.Join(idDir, name)); !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// addFrontendFlag registers the repeatable --frontend flag of `vigil client` and `vigil agent`.
func addFrontendFlag(fs *flag.FlagSet, l *listFlag) {
	fs.Var(l, "frontend", "gRPC `address` of an aggregation frontend of the coordinator's tier (vigil coordinator --frontend; repeatable): "+
		"updates go to the frontends, a fleet spread over them by device ID, and to --coordinator when none answers; everything else goes to --coordinator")
}

// deviceConnection returns a connection to the coordinator presenting the device's
// certificate, clients of the frontends (--frontend) over the same TLS (the frontends present
// the coordinator's certificate), and the device's identity. On the first run the device enrols: it registers
// with the enrolment authority (--enrol, --enrol-ca, --token, --region) for a device record and
// then enrols with the coordinator (--ca) for its TLS certificate; an interrupted enrolment
// resumes from what --dir holds.
func deviceConnection(ctx context.Context, f clientFlags, pinnedRoot []byte, stdout io.Writer, dial ...grpc.DialOption) (*grpc.ClientConn, []vigilv1.CoordinatorClient, *client.Identity, error) {
	idDir := filepath.Join(f.dir, "identity")
	id, err := client.LoadIdentity(idDir)
	if errors.Is(err, os.ErrNotExist) {
		if id, err = enrolDevice(ctx, f, idDir, pinnedRoot); err != nil {
			return nil, nil, nil, err
		}
		fmt.Fprintf(stdout, "enrolled as %s in region %s, certificate valid until %s\n", f.id, id.Region, id.TLS.Leaf().NotAfter.Format(time.RFC3339))
	} else if err != nil {
		return nil, nil, nil, fmt.Errorf("client: --dir: %w", err)
	}
	if id.DeviceID != f.id {
		return nil, nil, nil, fmt.Errorf("client: --dir %s holds the identity of %q, not --device-id %q", f.dir, id.DeviceID, f.id)
	}
	// The certificate is renewed at two thirds of its lifetime while the device runs; new
	// connections present the newest (the coordinator recycles connections daily).
	renewer, err := client.NewRenewer(id, client.RenewConfig{Dir: idDir})
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := transport.DialCoordinator(f.addr, renewer.ClientTLS(pki.Coordinator("")), dial...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("client: --coordinator: %w", err)
	}
	boot, err := transport.DialCoordinator(f.addr, pki.ClientTLS(nil, id.TLS.RootPool(), pki.Coordinator("")), dial...)
	if err != nil {
		conn.Close()
		return nil, nil, nil, fmt.Errorf("client: --coordinator: %w", err)
	}
	var frontendConns []*grpc.ClientConn
	var frontends []vigilv1.CoordinatorClient
	for _, addr := range f.frontends {
		fc, err := transport.DialCoordinator(addr, renewer.ClientTLS(pki.Coordinator("")), dial...)
		if err != nil {
			for _, c := range append(frontendConns, conn, boot) {
				c.Close()
			}
			return nil, nil, nil, fmt.Errorf("client: --frontend %s: %w", addr, err)
		}
		frontendConns = append(frontendConns, fc)
		frontends = append(frontends, vigilv1.NewCoordinatorClient(fc))
	}
	renewer.Connect(vigilv1.NewCoordinatorClient(conn), vigilv1.NewCoordinatorClient(boot))
	go func() {
		renewer.Run(ctx)
		boot.Close()
		for _, c := range frontendConns {
			c.Close()
		}
	}()
	return conn, frontends, id, nil
}

// enrolDevice runs the device's enrolment into idDir.
func enrolDevice(ctx context.Context, f clientFlags, idDir string, pinnedRoot []byte) (*client.Identity, error) {
	if f.ca == "" {
		return nil, fmt.Errorf("client: %s holds no identity: enrol with --enrol, --enrol-ca, --token, --region and --ca", idDir)
	}
	boot, err := pki.ReadCertificates(f.ca)
	if err != nil {
		return nil, fmt.Errorf("client: --ca: %w", err)
	}
	cfg := client.EnrolConfig{Dir: idDir, DeviceID: f.id, Region: f.region, Token: f.token, Bootstrap: boot}
	if len(pinnedRoot) > 0 {
		cfg.RootName = "--root " + f.root
		if cfg.Root, err = release.ParseTrustedRoot(pinnedRoot); err != nil {
			return nil, fmt.Errorf("client: --root: %w", err)
		}
	}
	if f.enrol != "" {
		if f.enrolCA == "" {
			return nil, errors.New("client: --enrol needs --enrol-ca, the enrolment authority's TLS CA certificate")
		}
		authCA, err := pki.ReadCertificates(f.enrolCA)
		if err != nil {
			return nil, fmt.Errorf("client: --enrol-ca: %w", err)
		}
		conn, err := grpc.NewClient(f.enrol, grpc.WithTransportCredentials(credentials.NewTLS(
			pki.ClientTLS(nil, pki.Credentials{Roots: authCA}.RootPool(), pki.EnrolmentAuthority("")))))
		if err != nil {
			return nil, fmt.Errorf("client: --enrol: %w", err)
		}
		defer conn.Close()
		cfg.Authority = vigilv1.NewEnrolmentClient(conn)
	}
	conn, err := transport.DialCoordinator(f.addr, pki.ClientTLS(nil, pki.Credentials{Roots: boot}.RootPool(), pki.Coordinator("")))
	if err != nil {
		return nil, fmt.Errorf("client: --coordinator: %w", err)
	}
	defer conn.Close()
	cfg.Coordinator = vigilv1.NewCoordinatorClient(conn)
	id, err := client.Enrol(ctx, cfg)
	switch {
	case errors.Is(err, client.ErrRecordUnverified) && f.root == "":
		return nil, fmt.Errorf("%w (give --root)", err)
	case errors.Is(err, client.ErrRecordUnverified):
		return nil, err
	case errors.Is(err, client.ErrRecordRevoked):
		return nil, fmt.Errorf("%w (flags --token, --enrol, --enrol-ca, --region)", err)
	}
	if err != nil {
		if _, serr := os.Stat(filepath.Join(idDir, client.RecordFile)); serr == nil {
			return nil, fmt.Errorf("%w (flags --ca, --coordinator); %s keeps the device record: run again to finish enrolling, no new token needed",
				err, filepath.Join(idDir, client.RecordFile))
		}
		return nil, fmt.Errorf("%w (flags --enrol, --enrol-ca, --token, --region, --ca)", err)
	}
	return id, nil
}

// startUpdater keeps the device's installed global model up to date from its region's store.
func startUpdater(ctx context.Context, f clientFlags, root []byte, windows [][]float64, stdout io.Writer) (*updater.Updater, error) {
	st, err := openStore(ctx, f.regionStore, false)
	if err != nil {
		return nil, fmt.Errorf("client: --region-store: %w", err)
	}
	u, err := updater.New(updater.Config{
		Store: st, Model: sim.AutoencoderModel, FeatureSet: sim.FeatureSet,
		Dir: filepath.Join(f.dir, "updater"), PinnedRoot: root, Interval: f.poll, ShadowWindows: 5,
	})
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	live := make(chan []float64)
	go func() {
		for i := 0; ctx.Err() == nil; i++ {
			select {
			case live <- windows[i%len(windows)]:
			case <-ctx.Done():
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	go u.Run(ctx, live, func(ev updater.Event, err error) {
		if err != nil {
			fmt.Fprintf(stdout, "release check failed: %v\n", err)
			return
		}
		if ev.Reason != nil {
			fmt.Fprintf(stdout, "release v%d %s: %v\n", ev.Version, ev.Kind, ev.Reason)
			return
		}
		fmt.Fprintf(stdout, "release v%d %s\n", ev.Version, ev.Kind)
	})
	return u, nil
}

// localLoss describes a round's local training: its loss, or that there was nothing to train
// on (the device sent the zero update with its noise).
func localLoss(loss float64) string {
	if math.IsNaN(loss) {
		return "no local data (the zero update sent, with its noise)"
	}
	return fmt.Sprintf("local loss %.4f", loss)
}
