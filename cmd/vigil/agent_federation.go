package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/mouse"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/sim"
)

// agentFederation is how `vigil agent` takes part in its organisation: the device's enrolment
// (as `vigil client` enrols), its rounds, and the releases of its region.
type agentFederation struct {
	f        clientFlags
	idle     time.Duration
	shadow   int
	root     []byte
	takePart bool // --coordinator given: rounds
	follow   bool // --region-store given: releases
}

func addAgentFederationFlags(fs *flag.FlagSet) *agentFederation {
	a := &agentFederation{}
	f := &a.f
	fs.StringVar(&f.addr, "coordinator", "", "gRPC `address` of the organisation's coordinator: take part in its rounds from the stored feature windows, "+
		"only while the device is idle (empty: the agent runs standalone)")
	addFrontendFlag(fs, &f.frontends)
	fs.StringVar(&f.id, "device-id", "", "this device's ID in the organisation (with --coordinator or --region-store)")
	fs.StringVar(&f.ca, "ca", "", "the organisation's CA certificate (PEM), to trust the coordinator when enrolling (first run only)")
	fs.StringVar(&f.enrol, "enrol", "", "gRPC `address` of the enrolment authority (first run only)")
	fs.StringVar(&f.enrolCA, "enrol-ca", "", "the enrolment authority's TLS CA certificate (first run only)")
	fs.StringVar(&f.token, "token", "", "one-time enrolment `token` (first run only; vigil enrol token)")
	fs.StringVar(&f.region, "region", "", "the region this device's data stays in (first run only)")
	fs.StringVar(&f.root, "root", "", "the organisation's pinned root of trust (root.json): key epochs, privacy policy and releases are verified against it")
	fs.StringVar(&f.regionStore, "region-store", "", "this device's region store (DIR or s3://bucket/prefix): install the organisation's verified releases from it")
	fs.DurationVar(&f.poll, "poll", time.Minute, "how often to poll the region store for releases")
	fs.Float64Var(&f.epsilon, "epsilon", 16, "this device's own privacy budget, kept in its ledger DIR/privacy.ledger")
	fs.Float64Var(&f.delta, "delta", 1e-5, "delta of the device's privacy budget")
	fs.Float64Var(&f.minNoise, "min-noise-multiplier", 0.5, "refuse tasks asking for less noise than this")
	fs.DurationVar(&a.idle, "idle-after", 5*time.Minute, "the device is idle, and may take part in a round, once no session has started or ended "+
		"and no events have arrived for this long")
	fs.IntVar(&a.shadow, "shadow-windows", 20, "windows of sessions in good standing a new autoencoder release is scored on before it replaces the running one")
	return a
}

// check validates the federation flags; the device's state lives in the agent's dir.
func (a *agentFederation) check(fs *flag.FlagSet, dir string) error {
	f := &a.f
	f.dir = dir
	a.takePart, a.follow = f.addr != "", f.regionStore != ""
	if !a.takePart && !a.follow {
		for _, name := range []string{"frontend", "device-id", "ca", "enrol", "enrol-ca", "token", "region", "root", "epsilon", "delta", "min-noise-multiplier", "idle-after", "poll", "shadow-windows"} {
			if setFlag(fs, name) {
				return fmt.Errorf("agent: --%s needs --coordinator or --region-store", name)
			}
		}
		return nil
	}
	switch {
	case f.root == "":
		return errors.New("agent: --root is required with --coordinator or --region-store: tasks, key epochs and releases are verified against it")
	case a.takePart && f.id == "":
		return errors.New("agent: --coordinator needs --device-id")
	case !(f.epsilon > 0) || !(f.delta > 0 && f.delta <= maxDelta):
		return fmt.Errorf("agent: --epsilon %v and --delta %v: want epsilon > 0 and delta in (0, %g]", f.epsilon, f.delta, maxDelta)
	case !(f.minNoise > 0):
		return fmt.Errorf("agent: --min-noise-multiplier %v must be positive", f.minNoise)
	case a.idle < 0 || a.shadow < 1:
		return fmt.Errorf("agent: --idle-after %v must not be negative and --shadow-windows %d positive", a.idle, a.shadow)
	}
	if f.id != "" {
		if err := vigilv1.ValidID("--device-id", f.id); err != nil {
			return fmt.Errorf("agent: %w", err)
		}
	}
	var err error
	if a.root, err = os.ReadFile(f.root); err != nil {
		return fmt.Errorf("agent: --root: %w", err)
	}
	return nil
}

// agentReleases are the updaters of the release streams; nil without --region-store.
type agentReleases struct{ ae, pop, mouse *updater.Updater }

// newestRoot is the newest root of trust any of the updaters has verified from the pinned one.
func (r agentReleases) newestRoot() []byte {
	var newest []byte
	var version uint64
	for _, u := range []*updater.Updater{r.ae, r.pop, r.mouse} {
		env := u.Root()
		if root, err := release.ParseTrustedRoot(env); err == nil && (newest == nil || root.Version > version) {
			newest, version = env, root.Version
		}
	}
	return newest
}

// mouseCurrent is the running mouse population release as a mouse model's global (nil: none).
func (r agentReleases) mouseCurrent() *models.Global {
	if r.mouse == nil {
		return nil
	}
	if m := r.mouse.Current(); m != nil {
		return &models.Global{Population: m.Population}
	}
	return nil
}

func (r agentReleases) current() (ae, pop *updater.Model) {
	if r.ae == nil {
		return nil, nil
	}
	return r.ae.Current(), r.pop.Current()
}

// openReleases opens the updaters of the three streams, in DIR/updater/MODEL.
func (a *agentFederation) openReleases(ctx context.Context) (agentReleases, error) {
	if !a.follow {
		return agentReleases{}, nil
	}
	st, err := openStore(ctx, a.f.regionStore, false)
	if err != nil {
		return agentReleases{}, fmt.Errorf("agent: --region-store: %w", err)
	}
	open := func(cfg updater.Config) (*updater.Updater, error) {
		if cfg.FeatureSet == "" {
			cfg.FeatureSet = sim.FeatureSet
		}
		cfg.Store, cfg.PinnedRoot, cfg.Interval = st, a.root, a.f.poll
		cfg.Dir = filepath.Join(a.f.dir, "updater", cfg.Model)
		u, err := updater.New(cfg)
		if err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
		return u, nil
	}
	var r agentReleases
	if r.ae, err = open(updater.Config{Model: sim.AutoencoderModel, ShadowWindows: a.shadow}); err != nil {
		return r, err
	}
	// The bounds are the rounds' own encoding, computed here from the code as the coordinator
	// computes it: a population outside them is refused, whoever signed it.
	rounds, err := sim.PopulationRounds(0, 0, sim.PopulationWindow)
	if err != nil {
		return r, fmt.Errorf("agent: %w", err)
	}
	if r.pop, err = open(updater.Config{Model: sim.PopulationModel, Population: rounds.Stats.Layout(), PopulationBounds: rounds.Stats}); err != nil {
		return r, err
	}
	// The mouse population carries the reference its rounds learnt; the bounds check that
	// reference against what the reference round's encoding allows, then the population
	// against the statistics encoding over it.
	mouseRounds, err := sim.MousePopulationRounds(0, 0, 0)
	if err != nil {
		return r, fmt.Errorf("agent: %w", err)
	}
	bounds := models.LearntBounds{Reference: mouseRounds.Reference, Stats: mouseRounds.StatsConfig}
	if r.mouse, err = open(updater.Config{Model: sim.MousePopulationModel, FeatureSet: mouse.FeatureSet, Population: mouseRounds.Reference.Layout(), PopulationBounds: bounds}); err != nil {
		return r, err
	}
	return r, nil
}

// start runs the device's part in the organisation beside the agent until ctx ends: the
// updaters, and with --coordinator the federated client over the agent's stored windows.
func (a *agentFederation) start(ctx context.Context, ag *agent.Agent, rel agentReleases, stdout io.Writer, logger *slog.Logger) (*sync.WaitGroup, error) {
	var wg sync.WaitGroup
	if a.follow {
		wg.Add(1)
		rep := newReleaseReports(stdout, rel)
		go func() {
			defer wg.Done()
			ag.FollowReleases(ctx, agent.Releases{Autoencoder: rel.ae, Population: rel.pop, MousePopulation: rel.mouse, Report: rep.report})
		}()
	}
	if !a.takePart {
		return &wg, nil
	}
	conn, frontends, id, err := deviceConnection(ctx, a.f, a.root, stdout)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	api := vigilv1.NewCoordinatorClient(conn)
	keys, err := client.NewSignedKeys(api, a.root, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: --root: %w", err)
	}
	if err := keys.PersistTo(filepath.Join(a.f.dir, client.KeyEpochFloorFile)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: --dir: %w", err)
	}
	trusted, err := release.ParseTrustedRoot(a.root)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: --root: %w", err)
	}
	policy, err := client.NewPolicyGuard(trusted, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: --root: %w", err)
	}
	if err := policy.PersistTo(filepath.Join(a.f.dir, client.PolicyFloorFile)); err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: --dir: %w", err)
	}
	if rel.ae != nil {
		// Policies and key epochs are verified under the root the updaters moved forward to,
		// so that a rotation retiring a stolen key reaches them too.
		policy.Follow(rel.newestRoot)
		keys.Follow(rel.newestRoot)
	}
	ledger, err := sim.DeviceLedger(a.f.dir, a.f.id, a.f.epsilon, a.f.delta)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: --epsilon: %w", err)
	}
	fc, err := client.New(client.Config{
		DeviceID: a.f.id, Identity: id, Coordinator: ag.WhenIdle(api, a.idle), Frontends: frontends, Data: ag,
		Sealer: client.NewThresholdSealer(a.f.id, keys), FeatureSet: sim.FeatureSet, Ledger: ledger, Policy: policy,
		MinNoiseMultiplier: a.f.minNoise, Logger: logger,
		// Which releases the device runs, never how they scored in shadow (see client.Config).
		Installed: installedVersions(rel.ae, rel.pop, rel.mouse),
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	fmt.Fprintf(stdout, "taking part in rounds of %s as %s when idle for %v; privacy ledger %s: budget epsilon %g at delta %g\n",
		a.f.addr, a.f.id, a.idle, ledger.Path(), a.f.epsilon, a.f.delta)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close()
		err := fc.RunRounds(ctx, 0, func(r client.Result) {
			fmt.Fprintf(stdout, "submitted round %d (%d updates in), %s\n", r.Round, r.Accepted, localLoss(r.TrainLoss))
		})
		switch {
		case ctx.Err() != nil:
		case errors.Is(err, dp.ErrBudgetExhausted):
			fmt.Fprintf(stdout, "stopped taking part: %v\n", err)
		case err != nil:
			logger.Error("stopped taking part in rounds", "err", err)
		}
	}()
	return &wg, nil
}

// releaseReports prints what the updaters report. A failure is printed when it changes, not at
// every poll, and a recovery is printed and forgets it, so that the same failure coming back
// later is printed again (a review: a second outage with the same message, as "connection
// refused" has, was silent, and a recovery never said). Report is called from each updater's
// goroutine: a failing poll of two models at once wrote the map concurrently (a fatal
// "concurrent map writes", found by the race detector).
type releaseReports struct {
	out io.Writer
	rel agentReleases

	mu   sync.Mutex
	last map[string]error // by model: the failure or the "no release yet" last printed
}

func newReleaseReports(out io.Writer, rel agentReleases) *releaseReports {
	return &releaseReports{out: out, rel: rel, last: map[string]error{}}
}

// changed records err as model's last failure and reports whether it differs from the one
// before.
func (r *releaseReports) changed(model string, err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if last := r.last[model]; last != nil && last.Error() == err.Error() {
		return false
	}
	r.last[model] = err
	return true
}

// recovered forgets model's last failure and returns it (nil: none).
func (r *releaseReports) recovered(model string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	last := r.last[model]
	delete(r.last, model)
	return last
}

func (r *releaseReports) report(model string, ev updater.Event, err error) {
	switch {
	case model == "":
		a, p := r.rel.current()
		fmt.Fprintf(r.out, "global model installed: %s v%d, %s v%d (refit: %v)\n", sim.AutoencoderModel, version(a), sim.PopulationModel, version(p), errText(err))
	case model == sim.MousePopulationModel && ev.Kind == updater.Installed:
		fmt.Fprintf(r.out, "mouse model installed: %s v%d (refit: %v)\n", model, ev.Version, errText(err))
	case errors.Is(err, release.ErrNoRelease):
		// Nothing published on that stream yet (an organisation without mouse rounds, or a
		// new one): no failure, and said once.
		if r.changed(model, err) {
			fmt.Fprintf(r.out, "no release of %s in the region store yet\n", model)
		}
	case err != nil:
		if r.changed(model, err) {
			fmt.Fprintf(r.out, "release check of %s failed: %v\n", model, err)
		}
	case ev.Kind == updater.Recovered:
		// After "no release yet", the release that ends it says so itself.
		if last := r.recovered(model); last != nil && !errors.Is(last, release.ErrNoRelease) {
			fmt.Fprintf(r.out, "release check of %s recovered (running v%d)\n", model, ev.Version)
		}
	case ev.Reason != nil:
		fmt.Fprintf(r.out, "release %s v%d %s: %v\n", model, ev.Version, ev.Kind, ev.Reason)
	default:
		fmt.Fprintf(r.out, "release %s v%d %s\n", model, ev.Version, ev.Kind)
	}
}

func version(m *updater.Model) uint64 {
	if m == nil {
		return 0
	}
	return m.Version
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
