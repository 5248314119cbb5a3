package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

type demoFlags struct {
	devices, perRound, rounds, window, windows int
	aalto, storeDir                            string
	seed                                       uint64
	logLevel                                   slog.Level
	clip, noise, epsilon, delta, deviceEpsilon float64
	populationNoise                            float64
	trustees, threshold, updaters, tolerated   int
	plaintext, noDP                            bool
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDemoFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.logLevel}))
	devs, err := demoDevices(f, stdout)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if f.storeDir == "" {
		if f.storeDir, err = os.MkdirTemp("", "vigil-demo-"); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	st, err := store.NewFS(filepath.Join(f.storeDir, "store"))
	if err != nil {
		return fmt.Errorf("demo: --dir: %w", err)
	}
	perRound := min(f.perRound, len(devs))
	if f.perRound == 0 {
		perRound = max(2, len(devs)/4)
	}
	minUpdates := max(2, perRound/2)
	now := time.Now()
	emb, err := newEmbedded(f.storeDir, f.trustees, f.threshold, minUpdates, f.policy(minUpdates, now), now)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer emb.close()
	var sealing coordinator.Sealing = coordinator.Insecure{}
	if !f.plaintext {
		if sealing, err = emb.sealing(); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	enroller, err := emb.enroller()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	rel, err := newReleases(ctx, f.storeDir, emb)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	publisher, err := rel.publisher()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	var heldOut [][]float64
	for _, d := range devs {
		heldOut = append(heldOut, d.heldOut...)
	}
	spec := globalSpec()
	var population *coordinator.PopulationRounds
	if f.populationNoise > 0 {
		z := f.populationNoise
		if f.noDP {
			z = 0
		}
		if population, err = populationRounds(z, 0, f.window); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
	}
	events := make(chan coordinator.Event, 4*len(devs)+16)
	coord, err := coordinator.New(ctx, coordinator.Config{
		Spec: spec, FeatureSet: featureSet, InitSeed: f.seed, Population: population,
		Rounds: f.rounds, DevicesPerRound: perRound, MinUpdates: minUpdates, MinEnrolled: len(devs),
		RoundTimeout: 60 * time.Second, Store: st, StateDir: filepath.Join(f.storeDir, "state"), Logger: logger,
		Privacy: f.privacy(), PrivacyPolicy: emb.policy, Root: emb.root, Enroller: enroller, Publisher: publisher,
		Events: func(e coordinator.Event) { events <- e },
	}, sealing)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	startLoss, err := heldOutLoss(spec, coord.Global().Params, heldOut)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	// Served as `vigil coordinator` serves: devices with certificates on one server, enrolment
	// of strangers on another, one address.
	// Every simulated device connects from 127.0.0.1, so the per-address caps that hold off a
	// stranger on the network must make room for the whole fleet enrolling at once.
	fleetHost := pki.ListenerConfig{MaxHandshakesPerHost: len(devs) + 16, MaxUnauthenticatedPerHost: len(devs) + 16}
	srv, err := serveCoordinator(lis, coord, emb.coordCreds.TLSCertificate(), emb.auth.CA.Pool(), emb.auth.Revocations, 100, fleetHost)
	if err != nil {
		lis.Close()
		return fmt.Errorf("demo: %w", err)
	}
	defer srv.stop(5 * time.Second)

	fmt.Fprintf(stdout, "coordinator on %s: %d devices, %d expected per round, up to %d rounds, model %v (%d parameters), files in %s\n",
		lis.Addr(), len(devs), perRound, f.rounds, spec.Layers, spec.NumParams(), f.storeDir)
	fmt.Fprintln(stdout, "every connection is mutual TLS 1.3 (X25519MLKEM768); devices register with the enrolment authority (one-time tokens) and sign their encrypted updates")
	if f.plaintext {
		fmt.Fprintln(stdout, "INSECURE: updates travel in the clear (--insecure-plaintext); the coordinator sees each one")
	} else {
		fmt.Fprintln(stdout, emb.describe())
	}
	fmt.Fprintln(stdout, privacyLine(f.privacy(), minUpdates))
	fmt.Fprintf(stdout, "the model's privacy ledger is %s; each device keeps its own in %s\n",
		f.privacy().LedgerPath, filepath.Join(f.storeDir, "devices", "DEVICE", "privacy.ledger"))
	fmt.Fprintf(stdout, "global model v1: held-out loss %.4f\n", startLoss)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go rel.run(ctx)
	fleet := runFleet(ctx, devs, lis.Addr().String(), emb, rel, f, logger)
	rows, err := runRounds(ctx, coord, events, newProgressBar(stderr, f.rounds), spec, st, heldOut)
	if errors.Is(err, dp.ErrBudgetExhausted) {
		fmt.Fprintf(stdout, "stopped before round %d: %v\n", len(rows)+1, err)
		err = nil
	}
	if err == nil {
		// Give the fleet one polling interval and a shadow evaluation to take the last release.
		time.Sleep(demoPollInterval + 6*50*time.Millisecond)
	}
	cancel()
	if ferr := fleet.Wait(); err == nil {
		err = ferr
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	printSummary(stdout, startLoss, rows, f.storeDir)
	rel.pickup.report(stdout, coord.Global().Meta.Version, min(f.updaters, len(devs)))
	if err := printReportSummary(stdout, f.storeDir, len(devs)); err != nil {
		return fmt.Errorf("demo: privacy report: %w", err)
	}
	return nil
}

func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, error) {
	var f demoFlags
	fs := newFlags("demo", stderr)
	fs.IntVar(&f.devices, "devices", 200, "number of simulated devices")
	fs.IntVar(&f.perRound, "devices-per-round", 0, "expected number of devices sampled per round (default a quarter of the devices)")
	fs.IntVar(&f.rounds, "rounds", 20, "most federated rounds to run (the privacy budget may stop the demo earlier)")
	fs.IntVar(&f.window, "window", 50, "keystrokes per window")
	fs.IntVar(&f.windows, "windows", 40, "windows each synthetic user types (a quarter is held out)")
	fs.StringVar(&f.aalto, "aalto", "", "directory of Aalto keystroke files: one device per participant instead of synthetic users")
	fs.StringVar(&f.storeDir, "dir", "", "directory for the model store and the coordinator's state (default: a new temporary directory)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for synthetic users, the initial model and local training")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelWarn, "log level: debug, info, warn or error")
	fs.Float64Var(&f.clip, "clip", 0.5, "L2 clip norm C of each device's update")
	fs.Float64Var(&f.noise, "noise-multiplier", 2, "noise multiplier z (> 0)")
	fs.Float64Var(&f.populationNoise, "population-noise", 2, "noise multiplier z of the first round, which learns the population model from every device (0: no population round)")
	fs.Float64Var(&f.epsilon, "epsilon", 8, "privacy budget: the demo stops before a round would exceed it")
	fs.Float64Var(&f.delta, "delta", 1e-5, "delta of the privacy budget")
	fs.Float64Var(&f.deviceEpsilon, "device-epsilon", 16, "each device's own privacy budget (its rounds charged without amplification)")
	fs.IntVar(&f.tolerated, "tolerated-devices", 0, "malicious devices per round the noise is calibrated against (default ceil(m_min/10))")
	fs.BoolVar(&f.noDP, "insecure-no-dp", false, "run the rounds WITHOUT differential privacy (recorded in the ledger and every release)")
	fs.IntVar(&f.trustees, "trustees", 3, "number of trustees holding shares of the decryption key")
	fs.IntVar(&f.threshold, "threshold", 2, "trustees needed to decrypt a round's sum")
	fs.IntVar(&f.updaters, "updaters", 20, "devices that also run the release updater (each writes its installed models to disk)")
	fs.BoolVar(&f.plaintext, "insecure-plaintext", false, "send updates in the clear instead of encrypted (debugging only)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, fmt.Errorf("demo: unexpected argument %q", fs.Arg(0))
	case f.devices < 2 || f.devices > 1000:
		return f, fmt.Errorf("demo: --devices %d out of range 2..1000", f.devices)
	case f.rounds < 1 || f.rounds > 1000:
		return f, fmt.Errorf("demo: --rounds %d out of range 1..1000", f.rounds)
	case f.window < 10 || f.window > 1000:
		return f, fmt.Errorf("demo: --window %d out of range 10..1000", f.window)
	case f.windows < 4:
		return f, fmt.Errorf("demo: --windows %d: need at least 4", f.windows)
	case f.perRound < 0 || f.perRound == 1:
		return f, fmt.Errorf("demo: --devices-per-round %d: need at least 2 (trustees never decrypt a single update)", f.perRound)
	case f.updaters < 0:
		return f, fmt.Errorf("demo: --updaters %d is negative", f.updaters)
	case f.clip <= 0:
		return f, fmt.Errorf("demo: --clip %v: need C > 0", f.clip)
	case f.noDP && setFlag(fs, "noise-multiplier"):
		return f, errors.New("demo: --insecure-no-dp conflicts with --noise-multiplier")
	case !f.noDP && !(f.noise > 0):
		return f, fmt.Errorf("demo: --noise-multiplier %v: differential privacy needs z > 0 (to run without it, say --insecure-no-dp)", f.noise)
	case f.populationNoise < 0 || f.noDP && f.populationNoise > 0 && setFlag(fs, "population-noise"):
		return f, fmt.Errorf("demo: --population-noise %v: want z > 0, or 0 for no population round (with --insecure-no-dp the round has no noise)", f.populationNoise)
	case !(f.deviceEpsilon > 0):
		return f, fmt.Errorf("demo: --device-epsilon %v must be positive", f.deviceEpsilon)
	}
	return f, nil
}

func (f demoFlags) privacy() coordinator.Privacy {
	return coordinatorPrivacy(f.noDP, f.clip, f.noise, f.epsilon, f.delta, f.tolerated, filepath.Join(f.storeDir, "state"))
}

// policy is the privacy policy the demo's privacy office signs: exactly the demo's settings as
// floors and ceilings, so the devices refuse any task that asks for less. Without differential
// privacy there is no policy to sign (no policy allows z = 0) and the devices check none.
func (f demoFlags) policy(minUpdates int, now time.Time) *release.PrivacyPolicy {
	if f.noDP {
		return nil
	}
	tDev := f.tolerated
	if tDev == 0 {
		tDev = dp.DefaultToleratedDevices(minUpdates)
	}
	minNoise, maxClip := f.noise, f.clip
	if f.populationNoise > 0 {
		minNoise, maxClip = min(minNoise, f.populationNoise), max(maxClip, populationClip)
	}
	return defaultPolicy(minNoise, uint32(minUpdates), uint32(tDev), maxClip, now)
}

// runFleet registers every device with the enrolment authority using a one-time token, enrols
// it with the coordinator, and runs its agent until ctx ends.
func runFleet(ctx context.Context, devs []deviceData, addr string, emb *embedded, rel *releases, f demoFlags, logger *slog.Logger) *errgroup.Group {
	g, gctx := errgroup.WithContext(ctx)
	// One encoder for the fleet: every device would compute the same public reference.
	population := new(client.PopulationEncoder)
	for i, d := range devs {
		if i < f.updaters {
			g.Go(func() error {
				if err := rel.runUpdater(gctx, f.storeDir, d.id, i, emb.keys.RootEnvelope, d.heldOut); !errors.Is(err, context.Canceled) {
					return fmt.Errorf("device %s updater: %w", d.id, err)
				}
				return nil
			})
		}
		g.Go(func() error {
			conn, id, err := emb.enrolDevice(gctx, addr, d.id, demoRegions[i%len(demoRegions)], time.Now())
			if err != nil {
				return err
			}
			defer conn.Close()
			api := vigilv1.NewCoordinatorClient(conn)
			var sealer client.Sealer = client.InsecurePlaintext{}
			if !f.plaintext {
				keys, err := client.NewSignedKeys(api, emb.keys.RootEnvelope, nil)
				if err != nil {
					return err
				}
				sealer = client.NewThresholdSealer(d.id, keys)
			}
			cfg := client.Config{
				DeviceID: d.id, Identity: id, Coordinator: api, Data: d,
				Sealer: sealer, FeatureSet: featureSet, Seed: f.seed + uint64(i), Logger: logger, Population: population,
			}
			if !f.noDP {
				if cfg.Policy, err = client.NewPolicyGuard(emb.root, nil); err != nil {
					return err
				}
				cfg.MinNoiseMultiplier = f.noise
				if f.populationNoise > 0 {
					cfg.MinNoiseMultiplier = min(f.noise, f.populationNoise)
				}
				if cfg.Ledger, err = deviceLedger(filepath.Join(f.storeDir, "devices", d.id), d.id, f.deviceEpsilon, f.delta); err != nil {
					return err
				}
			}
			agent, err := client.New(cfg)
			if err != nil {
				return err
			}
			switch err := agent.Run(gctx); {
			case errors.Is(err, context.Canceled):
			case errors.Is(err, dp.ErrBudgetExhausted):
				logger.Info("device stopped taking part: its privacy budget is spent", "device", d.id, "err", err)
			default:
				return err
			}
			return nil
		})
	}
	return g
}

// runRounds runs the coordinator until it stops, drawing progress from its events.
func runRounds(ctx context.Context, coord *coordinator.Coordinator, events chan coordinator.Event, bar progressBar,
	spec models.Spec, st store.Store, heldOut [][]float64) ([]roundRow, error) {
	runErr := make(chan error, 1)
	go func() { runErr <- coord.Run(ctx); close(events) }()
	rows, err := showRounds(events, bar, spec, st, heldOut)
	go func() {
		for range events { // if showRounds stopped early, keep the coordinator from blocking
		}
	}()
	if rerr := <-runErr; err == nil {
		err = rerr
	}
	return rows, err
}

func demoDevices(f demoFlags, stdout io.Writer) ([]deviceData, error) {
	if f.aalto == "" {
		devs := make([]deviceData, f.devices)
		for i := range devs {
			d, err := syntheticDevice(fmt.Sprintf("device-%03d", i+1), f.seed+uint64(i), f.windows, f.window)
			if err != nil {
				return nil, err
			}
			devs[i] = d
		}
		return devs, nil
	}
	devs, stats, err := aaltoDevices(f.aalto, f.devices, f.window, 4)
	if err != nil {
		return nil, fmt.Errorf("--aalto %s: %w", f.aalto, err)
	}
	fmt.Fprintf(stdout, "read %d participants from %s: %d keystroke rows, %d kept, dropped %v\n",
		len(devs), f.aalto, stats.Rows, stats.Kept, stats.Dropped)
	return devs, nil
}

type roundRow struct {
	round   uint64
	version uint64
	devices int
	loss    float64
	took    time.Duration
	epsilon float64
	// modelled and buckets are set for a population round: what survived the noise.
	modelled, buckets int
}

// showRounds draws progress from the coordinator's events and measures each new global version
// on the held-out windows, until the events end.
func showRounds(events <-chan coordinator.Event, bar progressBar, spec models.Spec, st store.Store, heldOut [][]float64) ([]roundRow, error) {
	var rows []roundRow
	selected := map[uint64]int{}
	for e := range events {
		switch e.Kind {
		case coordinator.RoundStarted:
			selected[e.Round] = e.Selected
			bar.draw(e.Round, 0, e.Selected)
		case coordinator.UpdateAccepted:
			bar.draw(e.Round, e.Accepted, selected[e.Round])
		case coordinator.RoundFailed:
			bar.failed(e.Round, e.Err)
		case coordinator.RoundCompleted:
			if e.Model != autoencoderModel {
				m, err := coordinator.LoadModel(context.Background(), st, e.Model, e.Version)
				if err != nil {
					return nil, err
				}
				pop, err := models.DecodePopulation(keystroke.NewLayout(), m.Population)
				if err != nil {
					return nil, err
				}
				modelled := pop.Modelled()
				bar.population(e.Round, e.Accepted, e.Selected, e.Duration, modelled, len(pop.Mean), e.Epsilon)
				rows = append(rows, roundRow{round: e.Round, version: e.Version, devices: e.Accepted, took: e.Duration, epsilon: e.Epsilon,
					modelled: modelled, buckets: len(pop.Mean)})
				continue
			}
			m, err := coordinator.LoadModel(context.Background(), st, autoencoderModel, e.Version)
			if err != nil {
				return nil, err
			}
			loss, err := heldOutLoss(spec, m.Params, heldOut)
			if err != nil {
				return nil, err
			}
			bar.done(e.Round, e.Accepted, e.Selected, e.Duration, loss, e.Epsilon)
			rows = append(rows, roundRow{round: e.Round, version: e.Version, devices: e.Accepted, loss: loss, took: e.Duration, epsilon: e.Epsilon})
		}
	}
	return rows, nil
}

func heldOutLoss(spec models.Spec, params []float64, rows [][]float64) (float64, error) {
	s, err := models.NewScorer(spec, params)
	if err != nil {
		return 0, err
	}
	var sum float64
	for _, r := range rows {
		sum += s.Score(r)
	}
	return sum / float64(len(rows)), nil
}

func printSummary(w io.Writer, startLoss float64, rows []roundRow, dir string) {
	fmt.Fprintf(w, "\n%-6s %-8s %-8s %-14s %-8s %s\n", "round", "version", "updates", "held-out loss", "epsilon", "time")
	fmt.Fprintf(w, "%-6s %-8s %-8s %-14.4f %-8s %s\n", "-", "v1", "-", startLoss, "0", "-")
	var total time.Duration
	var training []roundRow
	for _, r := range rows {
		if r.buckets > 0 {
			fmt.Fprintf(w, "%-6d %-8s %-8d %-14s %-8.3f %.2fs\n", r.round, "pop v"+fmt.Sprint(r.version), r.devices,
				fmt.Sprintf("%d of %d", r.modelled, r.buckets), r.epsilon, r.took.Seconds())
			continue
		}
		fmt.Fprintf(w, "%-6d %-8s %-8d %-14.4f %-8.3f %.2fs\n", r.round, fmt.Sprintf("v%d", r.version), r.devices, r.loss, r.epsilon, r.took.Seconds())
		total += r.took
		training = append(training, r)
	}
	if len(training) == 0 {
		fmt.Fprintln(w, "no training round completed")
		return
	}
	last := training[len(training)-1]
	fmt.Fprintf(w, "\nheld-out loss %.4f -> %.4f (%+.0f%%) over %d training rounds in %.1fs; every version is in %s\n",
		startLoss, last.loss, 100*(last.loss-startLoss)/startLoss, len(training), total.Seconds(), dir)
	for _, r := range rows {
		if r.buckets > 0 {
			fmt.Fprintf(w, "population model v%d (%s, round %d): %d of %d buckets survived the noise; devices fit their users' models against it\n",
				r.version, populationModel, r.round, r.modelled, r.buckets)
		}
	}
}
