package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// Coordinator runs federated rounds. Serve its gRPC API with Register and drive its rounds with
// Run.
type Coordinator struct {
	vigilv1.UnimplementedCoordinatorServer

	cfg     Config
	sealing Sealing
	log     *slog.Logger
	metrics *metrics
	wake    chan struct{}

	mu     sync.Mutex
	engine *round.Engine
	global GlobalModel
	// pops are the configured populations, with their newest models (population.go).
	pops      []*population
	devices   map[string]device
	sortedIDs enrolledIDs                 // the devices' IDs in order, for sampling (enrolledids.go)
	enrolling map[string]pendingEnrolment // enrolled but not yet called again: not in devices
	completed int
	open      openRound
	abandoned roundSummary  // a round found closing at restart and given up, to report once
	servable  uint64        // the open round once its start is durable: only its tasks are handed out
	opened    chan struct{} // closed, and replaced, when a round becomes servable
	ledger    *dp.Ledger
	contribs  *contributionLog // the open round's contributions, for the trustees
	intake    *intake          // the tier updates arrive through (intake.go); nil: straight into the sum

	// Operating the run: pacing, back-off, the operator's pause and abort, and what the
	// status reports (in memory only, except the pause).
	notBefore         time.Time // no round starts before this (pacing or back-off)
	failures          int       // failed rounds or trustee checks in a row
	paused            bool
	waitingForDevices bool
	// revocationsUnreadable: the revocation list could not be read at the last step (logged once).
	revocationsUnreadable bool
	revocationsSeen       uint64 // the revocation list's Generation last pruned by (0: none yet)
	abort                 string // non-empty: the open round is aborted, with this reason
	abortedByOperator     bool   // by the operator (charged), not because the tier could not take it
	closing               bool   // the open round's sum is being opened
	lastSeen              map[string]time.Time
	installed             map[string]map[string]uint64 // device -> model -> version it runs (installed.go)
	removed               map[string]removal
	trustees              []trustee.Health // the last trustee check
	lastRound             roundSummary     // the last round that ended
	recentRounds          []roundSummary   // the rounds that ended, newest first (stages.go)

	// retained are old model versions object lock kept, with when to try again (retention.go).
	retained map[uint64]time.Time

	unpublished    uint64 // a version not yet taken by the Publisher
	lastPublishTry time.Time

	replicated time.Time // Run's last Config.Replicate of everything; Run's alone

	// Durability: changes made under mu are written by the next commit; handlers that must not
	// answer before their change is on disk wait for pending.done.
	state    *stateFile   // nil: nothing is persisted
	registry *registryLog // the registry's changes (registrylog.go); nil: nothing is persisted
	dirty    bool
	// followed is set by updates followed from the tier: they are durable in its stream, which
	// a leader that starts reads again, so the state file writes them only for status readers,
	// at most every followedCommitEvery, rather than up to 50 times a second.
	followed   bool
	lastCommit time.Time
	pending    *commit
	stopped    chan struct{}
}

// commit is one write of the state file; err is set before done is closed.
type commit struct {
	done chan struct{}
	err  error
}

type device struct {
	region   string
	enrolled time.Time
	// record is the device record the enrolment authority signed, naming the key that signs
	// the device's updates (signingKey); nil when Config.Root is nil. issued is the record's
	// issue time: an older record never replaces a newer one.
	record []byte
	issued time.Time
}

// New returns a Coordinator that resumes from the newest global model in cfg.Store, or creates
// version 1 from cfg.InitSeed when the store holds none.
func New(ctx context.Context, cfg Config, sealing Sealing) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := cfg.checkPolicy(); err != nil {
		return nil, err
	}
	if sealing == nil {
		return nil, errors.New("coordinator: no sealing configured (use Insecure{} explicitly for plaintext updates)")
	}
	if _, encrypted := sealing.(*ThresholdHE); encrypted && !(cfg.Privacy.ClipNorm > 0) {
		return nil, errors.New("coordinator: encrypted updates are encoded relative to the clip norm: set Privacy.ClipNorm")
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("coordinator: metrics: %w", err)
	}
	global, err := loadOrInit(ctx, cfg)
	if err != nil {
		return nil, err
	}
	pops, err := loadPopulations(ctx, cfg)
	if err != nil {
		return nil, err
	}
	last := global.Meta.Round
	for _, p := range pops {
		last = max(last, p.model.Meta.Round, p.reference.Meta.Round)
	}
	engine, err := round.New(cfg.roundConfig(), last)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	m.globalVersion.Set(float64(global.Meta.Version))
	c := &Coordinator{
		cfg: cfg, sealing: sealing, log: cfg.Logger, metrics: m,
		wake: make(chan struct{}, 1), engine: engine, global: global, pops: pops, devices: map[string]device{},
		enrolling: map[string]pendingEnrolment{}, lastSeen: map[string]time.Time{}, removed: map[string]removal{},
		pending: &commit{done: make(chan struct{})}, stopped: make(chan struct{}), opened: make(chan struct{}),
	}
	if err := c.openLedger(); err != nil {
		return nil, err
	}
	c.unpublished = global.Meta.Version
	for _, p := range pops {
		p.unpublished = p.model.Meta.Version
	}
	if cfg.StateDir != "" {
		if c.state, err = newStateFile(cfg.StateDir); err != nil {
			return nil, err
		}
		saved, err := c.state.load()
		if err != nil {
			return nil, err
		}
		c.loadRecentRounds() // before restore, which may add a round it gives up
		if saved != nil {
			if err := c.restore(saved); err != nil {
				return nil, err
			}
		}
		if err := c.openRegistry(cfg.StateDir, saved); err != nil {
			return nil, err
		}
	}
	c.contribs = newContributionLog(cfg.StateDir)
	if _, encrypted := sealing.(*ThresholdHE); encrypted && c.engine.Current() != 0 {
		cur := c.engine.Current()
		if err := c.contribs.recover(cur, c.engine.Sum().Count()); err != nil {
			return nil, err
		}
	} else if err := c.contribs.recover(0, 0); err != nil {
		return nil, err
	}
	if cfg.Cluster != nil {
		c.intake = &intake{tier: cfg.Cluster, changed: map[string]struct{}{}}
		for id := range c.devices {
			c.intake.changed[id] = struct{}{}
		}
	}
	c.loadPaused()
	c.setRemaining()
	if eps, _ := c.spent(); eps > 0 {
		m.epsilon.Set(eps)
	}
	m.enrolled.Set(float64(len(c.devices)))
	if err := c.registerPendingMetric(); err != nil {
		return nil, fmt.Errorf("coordinator: metrics: %w", err)
	}
	return c, nil
}

func loadOrInit(ctx context.Context, cfg Config) (GlobalModel, error) {
	g, err := LoadModel(ctx, cfg.Store, cfg.ModelName, 0)
	if err == nil {
		if !specEqual(g.Meta.Spec(), cfg.Spec) || g.Meta.FeatureSet != cfg.FeatureSet {
			return GlobalModel{}, fmt.Errorf("coordinator: the store's model %q v%d is %v over %q, configured is %v over %q",
				cfg.ModelName, g.Meta.Version, g.Meta.Layers, g.Meta.FeatureSet, cfg.Spec.Layers, cfg.FeatureSet)
		}
		return g, nil
	}
	latest, lerr := latestVersion(ctx, cfg.Store, cfg.ModelName)
	if lerr != nil || latest != 0 {
		return GlobalModel{}, err
	}
	params, err := cfg.Spec.InitParams(cfg.InitSeed)
	if err != nil {
		return GlobalModel{}, fmt.Errorf("coordinator: %w", err)
	}
	g = GlobalModel{Params: params, Meta: models.Meta{
		Name: cfg.ModelName, Version: 1, Created: cfg.Now().UTC(), FeatureSet: cfg.FeatureSet,
		Layers: cfg.Spec.Layers, Activation: string(cfg.Spec.Activation),
	}}
	if err := saveModel(ctx, cfg.Store, &g); err != nil {
		return GlobalModel{}, err
	}
	return g, nil
}

// Global returns the newest global model.
func (c *Coordinator) Global() GlobalModel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.global
}

// Completed is the number of training rounds completed since New (population rounds not counted).
func (c *Coordinator) Completed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.completed
}
