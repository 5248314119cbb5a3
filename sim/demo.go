package sim

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
	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/mouse"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

// DemoConfig is a demo: the organisation's settings and its simulated fleet, as `vigil demo`
// takes them from its flags.
type DemoConfig struct {
	Devices         int    // synthetic devices, or Aalto participants
	DevicesPerRound int    // expected devices sampled per round; 0: a quarter of the devices
	Rounds          int    // most training rounds, after the population rounds (the privacy budget may stop the demo earlier)
	Window          int    // keystrokes per window
	Windows         int    // windows each synthetic user types (a quarter is held out)
	Aalto           string // directory of Aalto keystroke files: one device per participant instead of synthetic users
	Dir             string // the model store, the state and the devices' files; "": a new temporary directory
	Seed            uint64 // seeds the synthetic users, the initial model and local training

	// Differential privacy: clip norm, noise multiplier z, the model's budget (Epsilon, Delta),
	// each device's own budget (DeviceEpsilon, Delta), the malicious devices per round the noise
	// is calibrated against (0: the default), z of the population round (0: no population
	// round), or NoDP for none at all.
	Clip, Noise, Epsilon, Delta, DeviceEpsilon float64
	PopulationNoise                            float64
	// MousePopulationNoise is z of the mouse population's statistics rounds, after a reference
	// round at MouseReferenceNoise(z) (0: no mouse population rounds).
	MousePopulationNoise float64
	Tolerated            int
	NoDP                 bool

	Trustees, Threshold int  // trustees holding shares of the decryption key, and how many decrypt
	Updaters            int  // devices that also run the release updater
	Plaintext           bool // send updates in the clear instead of encrypted (debugging only)
	// NoTier sends updates straight into the round's sum instead of through the coordinator
	// tier's JetStream (embedded, its store in Dir/state/jetstream).
	NoTier bool

	Logger   *slog.Logger // the coordinator's and the devices' logs
	Stdout   io.Writer    // the report
	Progress io.Writer    // one line per round; redrawn in place on a terminal
}

// RunDemo runs an organisation and its simulated fleet in this process until the rounds end
// or the privacy budget stops them, and writes the report to f.Stdout. It returns the
// directory holding the store, the state and the devices' files.
func RunDemo(ctx context.Context, f DemoConfig) (dir string, err error) {
	if f.Logger == nil {
		f.Logger = slog.New(slog.DiscardHandler)
	}
	if f.Stdout == nil {
		f.Stdout = io.Discard
	}
	if f.Progress == nil {
		f.Progress = io.Discard
	}
	logger, stdout := f.Logger, f.Stdout
	devs, err := demoDevices(f, stdout)
	if err != nil {
		return "", err
	}
	if f.Dir == "" {
		if f.Dir, err = os.MkdirTemp("", "vigil-demo-"); err != nil {
			return "", err
		}
	}
	st, err := store.NewFS(filepath.Join(f.Dir, "store"))
	if err != nil {
		return f.Dir, fmt.Errorf("--dir: %w", err)
	}
	perRound := min(f.DevicesPerRound, len(devs))
	if f.DevicesPerRound == 0 {
		perRound = max(2, len(devs)/4)
	}
	minUpdates := max(2, perRound/2)
	now := time.Now()
	emb, err := newEmbedded(f.Dir, f.Trustees, f.Threshold, minUpdates, f.policy(minUpdates, now), now)
	if err != nil {
		return f.Dir, err
	}
	defer emb.close()
	var sealing coordinator.Sealing = coordinator.Insecure{}
	if !f.Plaintext {
		if sealing, err = emb.sealing(); err != nil {
			return f.Dir, err
		}
	}
	enroller, err := emb.enroller()
	if err != nil {
		return f.Dir, err
	}
	var heldOut [][]float64
	for _, d := range devs {
		heldOut = append(heldOut, d.HeldOut...)
	}
	spec := GlobalSpec()
	var populations []*coordinator.PopulationRounds
	if f.PopulationNoise > 0 {
		z := f.PopulationNoise
		if f.NoDP {
			z = 0
		}
		p, err := PopulationRounds(z, 0, f.Window)
		if err != nil {
			return f.Dir, err
		}
		populations = append(populations, p)
	}
	if f.MousePopulationNoise > 0 {
		z, zRef := f.MousePopulationNoise, MouseReferenceNoise(f.MousePopulationNoise)
		if f.NoDP {
			z, zRef = 0, 0
		}
		p, err := MousePopulationRounds(z, zRef, 0)
		if err != nil {
			return f.Dir, err
		}
		populations = append(populations, p)
	}
	var names []string
	for _, p := range populations {
		names = append(names, p.ModelName)
	}
	rel, err := newReleases(ctx, f.Dir, emb, names)
	if err != nil {
		return f.Dir, err
	}
	publisher, err := rel.publisher()
	if err != nil {
		return f.Dir, err
	}
	var tier *cluster.Tier
	if !f.NoTier {
		// Mutual TLS with the coordinator's certificate, as vigil coordinator --nats embedded
		// serves it: the server listens on 127.0.0.1, where other local users could reach it.
		// The coordinator itself connects in process.
		cert, ca, revoked := emb.coordCreds.TLSCertificate(), emb.auth.CA.Pool(), emb.auth.Revocations
		js, err := cluster.StartEmbeddedConfig(ctx, cluster.EmbeddedConfig{Dir: filepath.Join(f.Dir, "state"), TLS: cluster.ServerTLS(cert, ca, revoked)}, logger)
		if err != nil {
			return f.Dir, err
		}
		defer js.Close()
		nc, err := js.ConnectInProcess()
		if err != nil {
			return f.Dir, fmt.Errorf("the embedded JetStream: %w", err)
		}
		defer nc.Close()
		// The updates' bytes beside the server's store, as vigil coordinator --nats embedded
		// keeps them.
		blobs, err := store.NewUnsyncedFS(filepath.Join(f.Dir, "state", "tier-blobs"))
		if err != nil {
			return f.Dir, err
		}
		if tier, err = cluster.Open(ctx, nc, cluster.Config{Model: "keystroke-ae", Replicas: 1, Blobs: blobs}); err != nil {
			return f.Dir, err
		}
	}
	events := make(chan coordinator.Event, 4*len(devs)+16)
	coord, err := coordinator.New(ctx, coordinator.Config{
		Spec: spec, FeatureSet: FeatureSet, InitSeed: f.Seed, Populations: populations,
		Rounds: f.Rounds, DevicesPerRound: perRound, MinUpdates: minUpdates, MinEnrolled: len(devs),
		RoundTimeout: 60 * time.Second, Store: st, StateDir: filepath.Join(f.Dir, "state"), Logger: logger,
		Privacy: f.privacy(), PrivacyPolicy: emb.policy, Root: emb.root, Enroller: enroller, Publisher: publisher,
		Events: func(e coordinator.Event) { events <- e }, Cluster: tier,
	}, sealing)
	if err != nil {
		return f.Dir, err
	}
	startLoss, err := heldOutLoss(spec, coord.Global().Params, heldOut)
	if err != nil {
		return f.Dir, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return f.Dir, err
	}
	// Served as `vigil coordinator` serves: devices with certificates on one server, enrolment
	// of strangers on another, one address.
	// Every simulated device connects from 127.0.0.1, so the per-address caps that hold off a
	// stranger on the network must make room for the whole fleet enrolling at once.
	fleetHost := pki.ListenerConfig{MaxHandshakesPerHost: len(devs) + 16, MaxUnauthenticatedPerHost: len(devs) + 16}
	srv, err := transport.ServeCoordinator(lis, coord, emb.coordCreds.TLSCertificate(), emb.auth.CA.Pool(), emb.auth.Revocations, 100, fleetHost)
	if err != nil {
		lis.Close()
		return f.Dir, err
	}
	defer srv.Stop(5 * time.Second)

	// The demo learns its populations once, before training (Every 0): a round each, and one
	// more for a population that first learns its reference.
	popRounds := 0
	for _, p := range populations {
		popRounds++
		if p.Reference != nil {
			popRounds++
		}
	}
	rounds := f.Rounds + popRounds
	fmt.Fprintf(stdout, "coordinator on %s: %d devices, %d expected per round, up to %d rounds (%d for population models, %d training), model %v (%d parameters), files in %s\n",
		lis.Addr(), len(devs), perRound, rounds, popRounds, f.Rounds, spec.Layers, spec.NumParams(), f.Dir)
	fmt.Fprintln(stdout, "every connection is mutual TLS 1.3 (X25519MLKEM768); devices register with the enrolment authority (one-time tokens) and sign their encrypted updates")
	if f.Plaintext {
		fmt.Fprintln(stdout, "INSECURE: updates travel in the clear (--insecure-plaintext); the coordinator sees each one")
	} else {
		fmt.Fprintln(stdout, emb.describe())
	}
	if tier != nil {
		fmt.Fprintf(stdout, "updates reach the round through the coordinator tier: an embedded JetStream stream in %s, each device's stored once\n",
			filepath.Join(f.Dir, "state", "jetstream"))
	}
	fmt.Fprintln(stdout, PrivacyLine(f.privacy(), minUpdates))
	fmt.Fprintf(stdout, "the model's privacy ledger is %s; each device keeps its own in %s\n",
		f.privacy().LedgerPath, filepath.Join(f.Dir, "devices", "DEVICE", dp.DeviceLedgerFile))
	fmt.Fprintf(stdout, "global model v1: held-out loss %.4f\n", startLoss)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go rel.run(ctx)
	fleet := runFleet(ctx, devs, lis.Addr().String(), emb, rel, f, logger)
	rows, err := runRounds(ctx, coord, events, newProgressBar(f.Progress, rounds), spec, st, heldOut)
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
		return f.Dir, err
	}
	printSummary(stdout, startLoss, rows, f.Dir)
	rel.pickup.report(stdout, coord.Global().Meta.Version, min(f.Updaters, len(devs)))
	return f.Dir, nil
}

func (f DemoConfig) privacy() coordinator.Privacy {
	return CoordinatorPrivacy(f.NoDP, f.Clip, f.Noise, f.Epsilon, f.Delta, f.Tolerated, filepath.Join(f.Dir, "state"))
}

// policy is the privacy policy the demo's privacy office signs: exactly the demo's settings as
// floors and ceilings, so the devices refuse any task that asks for less. Without differential
// privacy there is no policy to sign (no policy allows z = 0) and the devices check none.
func (f DemoConfig) policy(minUpdates int, now time.Time) *release.PrivacyPolicy {
	if f.NoDP {
		return nil
	}
	tDev := f.Tolerated
	if tDev == 0 {
		tDev = dp.DefaultToleratedDevices(minUpdates)
	}
	minNoise, maxClip := f.Noise, f.Clip
	if f.PopulationNoise > 0 {
		minNoise, maxClip = min(minNoise, f.PopulationNoise), max(maxClip, PopulationClip)
	}
	if f.MousePopulationNoise > 0 {
		// MouseClip is also above the reference round's clip (39.5).
		minNoise, maxClip = min(minNoise, f.MousePopulationNoise), max(maxClip, MouseClip)
	}
	return DefaultPolicy(minNoise, uint32(minUpdates), uint32(tDev), maxClip, now)
}

// runFleet registers every device with the enrolment authority using a one-time token, enrols
// it with the coordinator, and runs its agent until ctx ends.
func runFleet(ctx context.Context, devs []Device, addr string, emb *embedded, rel *releases, f DemoConfig, logger *slog.Logger) *errgroup.Group {
	g, gctx := errgroup.WithContext(ctx)
	// One encoder for the fleet: every device would compute the same public reference.
	population := new(client.PopulationEncoder)
	for i, d := range devs {
		if i < f.Updaters {
			g.Go(func() error {
				if err := rel.runUpdater(gctx, f.Dir, d.ID, i, emb.keys.RootEnvelope, d.HeldOut); !errors.Is(err, context.Canceled) {
					return fmt.Errorf("device %s updater: %w", d.ID, err)
				}
				return nil
			})
		}
		g.Go(func() error {
			conn, id, err := emb.enrolDevice(gctx, addr, d.ID, demoRegions[i%len(demoRegions)], time.Now())
			if err != nil {
				return err
			}
			defer conn.Close()
			api := vigilv1.NewCoordinatorClient(conn)
			var sealer client.Sealer = client.InsecurePlaintext{}
			if !f.Plaintext {
				keys, err := client.NewSignedKeys(api, emb.keys.RootEnvelope, nil)
				if err != nil {
					return err
				}
				sealer = client.NewThresholdSealer(d.ID, keys)
			}
			cfg := client.Config{
				DeviceID: d.ID, Identity: id, Coordinator: api, Data: d,
				Sealer: sealer, FeatureSet: FeatureSet, Seed: f.Seed + uint64(i), Logger: logger, Population: population,
			}
			if !f.NoDP {
				if cfg.Policy, err = client.NewPolicyGuard(emb.root, nil); err != nil {
					return err
				}
				cfg.MinNoiseMultiplier = f.Noise
				if f.PopulationNoise > 0 {
					cfg.MinNoiseMultiplier = min(cfg.MinNoiseMultiplier, f.PopulationNoise)
				}
				if f.MousePopulationNoise > 0 {
					cfg.MinNoiseMultiplier = min(cfg.MinNoiseMultiplier, f.MousePopulationNoise)
				}
				if cfg.Ledger, err = DeviceLedger(filepath.Join(f.Dir, "devices", d.ID), d.ID, f.DeviceEpsilon, f.Delta); err != nil {
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
				logger.Info("device stopped taking part: its privacy budget is spent", "device", d.ID, "err", err)
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

func demoDevices(f DemoConfig, stdout io.Writer) ([]Device, error) {
	if f.Aalto == "" {
		devs := make([]Device, f.Devices)
		for i := range devs {
			d, err := SyntheticDevice(fmt.Sprintf("device-%03d", i+1), f.Seed+uint64(i), f.Windows, f.Window)
			if err != nil {
				return nil, err
			}
			devs[i] = d
		}
		return devs, nil
	}
	devs, stats, err := AaltoDevices(f.Aalto, f.Devices, f.Window, 4)
	if err != nil {
		return nil, fmt.Errorf("--aalto %s: %w", f.Aalto, err)
	}
	fmt.Fprintf(stdout, "read %d participants from %s: %d keystroke rows, %d kept, dropped %v\n",
		len(devs), f.Aalto, stats.Rows, stats.Kept, stats.Dropped)
	return devs, nil
}

type roundRow struct {
	round   uint64
	version uint64
	devices int
	loss    float64
	took    time.Duration
	epsilon float64
	// modelled and buckets are set for a population round: what survived the noise; model
	// names the population model of a population or reference round.
	modelled, buckets int
	model             string
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
			if e.Model == MouseReferenceModel {
				bar.reference(e.Round, e.Accepted, e.Selected, e.Duration, e.Epsilon)
				rows = append(rows, roundRow{round: e.Round, version: e.Version, devices: e.Accepted, took: e.Duration, epsilon: e.Epsilon, model: e.Model})
				continue
			}
			if e.Model != AutoencoderModel {
				m, err := coordinator.LoadModel(context.Background(), st, e.Model, e.Version)
				if err != nil {
					return nil, err
				}
				layout := keystroke.NewLayout()
				if e.Model == MousePopulationModel {
					layout = mouse.NewLayout()
				}
				pop, err := models.DecodePopulation(layout, m.Population)
				if err != nil {
					return nil, err
				}
				modelled := pop.Modelled()
				label := "population model"
				if e.Model == MousePopulationModel {
					label = "mouse population model"
				}
				bar.population(e.Round, label, e.Accepted, e.Selected, e.Duration, modelled, len(pop.Mean), e.Epsilon)
				rows = append(rows, roundRow{round: e.Round, version: e.Version, devices: e.Accepted, took: e.Duration, epsilon: e.Epsilon,
					modelled: modelled, buckets: len(pop.Mean), model: e.Model})
				continue
			}
			m, err := coordinator.LoadModel(context.Background(), st, AutoencoderModel, e.Version)
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
		switch {
		case r.model == MouseReferenceModel:
			fmt.Fprintf(w, "%-6d %-8s %-8d %-14s %-8.3f %.2fs\n", r.round, "ref v"+fmt.Sprint(r.version), r.devices, "-", r.epsilon, r.took.Seconds())
			continue
		case r.model != "":
			prefix := "pop v"
			if r.model == MousePopulationModel {
				prefix = "mouse v"
			}
			fmt.Fprintf(w, "%-6d %-8s %-8d %-14s %-8.3f %.2fs\n", r.round, prefix+fmt.Sprint(r.version), r.devices,
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
				r.version, r.model, r.round, r.modelled, r.buckets)
		}
	}
}
