package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator/round"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
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

	mu        sync.Mutex
	engine    *round.Engine
	global    GlobalModel
	devices   map[string]device
	completed int
	lossSum   float64 // sum of reported training losses in the open round
	abandoned uint64  // a round found closed at restart, to report once
	servable  uint64  // the open round once its start is durable: only its tasks are handed out

	// Durability: changes made under mu are written by the next commit; handlers that must not
	// answer before their change is on disk wait for pending.done.
	state   *stateFile // nil: nothing is persisted
	dirty   bool
	pending *commit
	stopped chan struct{}
}

// commit is one write of the state file; err is set before done is closed.
type commit struct {
	done chan struct{}
	err  error
}

type device struct {
	region   string
	enrolled time.Time
}

// New returns a Coordinator that resumes from the newest global model in cfg.Store, or creates
// version 1 from cfg.InitSeed when the store holds none.
func New(ctx context.Context, cfg Config, sealing Sealing) (*Coordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if sealing == nil {
		return nil, errors.New("coordinator: no sealing configured (use Insecure{} explicitly for plaintext updates)")
	}
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("coordinator: metrics: %w", err)
	}
	global, err := loadOrInit(ctx, cfg)
	if err != nil {
		return nil, err
	}
	engine, err := round.New(cfg.roundConfig(), global.Meta.Round)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	m.globalVersion.Set(float64(global.Meta.Version))
	c := &Coordinator{
		cfg: cfg, sealing: sealing, log: cfg.Logger, metrics: m,
		wake: make(chan struct{}, 1), engine: engine, global: global, devices: map[string]device{},
		pending: &commit{done: make(chan struct{})}, stopped: make(chan struct{}),
	}
	if cfg.StateDir != "" {
		if c.state, err = newStateFile(cfg.StateDir); err != nil {
			return nil, err
		}
		saved, err := c.state.load()
		if err != nil {
			return nil, err
		}
		if saved != nil {
			if err := c.restore(saved); err != nil {
				return nil, err
			}
		}
	}
	m.enrolled.Set(float64(len(c.devices)))
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
	g = GlobalModel{Params: params, Meta: ModelMeta{
		Name: cfg.ModelName, Version: 1, Created: cfg.Now().UTC(), FeatureSet: cfg.FeatureSet,
		Layers: cfg.Spec.Layers, Activation: string(cfg.Spec.Activation),
	}}
	if err := saveModel(ctx, cfg.Store, g); err != nil {
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

// Completed is the number of rounds completed since New.
func (c *Coordinator) Completed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.completed
}

// Run drives rounds until cfg.Rounds have completed or ctx ends. It is also what writes the
// durable state, so updates are acknowledged only while it runs.
func (c *Coordinator) Run(ctx context.Context) error {
	defer close(c.stopped)
	tick := time.NewTicker(c.cfg.TickInterval)
	defer tick.Stop()
	if r := c.abandoned; r != 0 {
		c.metrics.rounds.WithLabelValues("failed").Inc()
		c.emit(Event{Kind: RoundFailed, Round: r, Err: errors.New("the coordinator stopped while the round was closing")})
	}
	for {
		if err := c.commit(); err != nil {
			return err
		}
		done, err := c.step(ctx)
		if err == nil {
			err = c.commit()
		}
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		case <-c.wake:
		}
	}
}

func (c *Coordinator) emit(e Event) {
	if c.cfg.Events != nil {
		c.cfg.Events(e)
	}
}

func (c *Coordinator) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// step starts a round, or closes or fails the open one, as the time and the quorum say.
func (c *Coordinator) step(ctx context.Context) (done bool, err error) {
	now := c.cfg.Now()
	c.mu.Lock()
	if c.engine.Current() == 0 {
		if c.cfg.Rounds > 0 && c.completed >= c.cfg.Rounds || len(c.devices) < c.cfg.MinEnrolled {
			c.mu.Unlock()
			return c.cfg.Rounds > 0 && c.completed >= c.cfg.Rounds, nil
		}
		c.startLocked(now)
		c.mu.Unlock()
		// Tasks go out only once the round is on disk, so a round number is never reused.
		if err := c.commit(); err != nil {
			return false, err
		}
		c.mu.Lock()
		c.servable = c.engine.Current()
		c.mu.Unlock()
		return false, nil
	}
	outcome, _ := c.engine.Decide(now)
	if outcome == aggregation.Wait {
		c.mu.Unlock()
		return false, nil
	}
	closed, err := c.engine.Close()
	if err != nil {
		c.mu.Unlock()
		return false, fmt.Errorf("coordinator: %w", err)
	}
	base, lossSum := c.global, c.lossSum
	c.dirty = true
	c.mu.Unlock()
	// The frozen participant set is on disk before anyone is asked to open the sum.
	if err := c.commit(); err != nil {
		return false, err
	}

	var next GlobalModel
	if outcome == aggregation.Close {
		next, err = c.release(ctx, closed, base, lossSum)
	} else {
		err = fmt.Errorf("only %d of %d sampled devices answered by the deadline; at least %d are needed",
			len(closed.Participants), closed.Selected, c.cfg.MinUpdates)
	}
	dur := now.Sub(closed.Started)
	if outcome == aggregation.Close && err == nil {
		dur = c.cfg.Now().Sub(closed.Started)
	}

	c.mu.Lock()
	c.engine.Finish()
	c.dirty = true
	if err == nil {
		c.global = next
		c.completed++
	}
	c.mu.Unlock()

	c.metrics.roundDuration.Observe(dur.Seconds())
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.metrics.rounds.WithLabelValues("failed").Inc()
		c.log.Warn("round failed", "round", closed.Round, "err", err)
		c.emit(Event{Kind: RoundFailed, Round: closed.Round, Selected: closed.Selected, Accepted: len(closed.Participants), Duration: dur, Err: err})
		return false, nil
	}
	c.metrics.rounds.WithLabelValues("completed").Inc()
	c.metrics.participants.Set(float64(len(closed.Participants)))
	c.metrics.globalVersion.Set(float64(next.Meta.Version))
	c.log.Info("round completed", "round", closed.Round, "version", next.Meta.Version,
		"participants", len(closed.Participants), "selected", closed.Selected, "duration", dur)
	c.emit(Event{Kind: RoundCompleted, Round: closed.Round, Selected: closed.Selected, Accepted: len(closed.Participants),
		Version: next.Meta.Version, Duration: dur, MeanTrainLoss: next.Meta.MeanTrainLoss})
	return false, nil
}

func (c *Coordinator) startLocked(now time.Time) {
	ids := make([]string, 0, len(c.devices))
	for id := range c.devices {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	c.lossSum = 0
	c.dirty = true
	id, selected, err := c.engine.Start(now, c.global.Meta.Version, ids, c.sealing.NewSum(len(c.global.Params)), c.cfg.Rand)
	if err != nil {
		c.metrics.rounds.WithLabelValues("failed").Inc()
		c.log.Warn("round not started", "round", id, "err", err)
		c.emit(Event{Kind: RoundFailed, Round: id, Err: err})
		return
	}
	c.log.Info("round started", "round", id, "base_version", c.global.Meta.Version, "selected", len(selected), "enrolled", len(ids))
	c.emit(Event{Kind: RoundStarted, Round: id, Selected: len(selected)})
}

// release opens the closed round's sum, applies the server optimiser and stores the new version.
func (c *Coordinator) release(ctx context.Context, closed round.Closed, base GlobalModel, lossSum float64) (GlobalModel, error) {
	sum, err := c.sealing.Open(ctx, closed.Round, closed.Sum)
	if err != nil {
		return GlobalModel{}, fmt.Errorf("open the sum: %w", err)
	}
	n := len(closed.Participants)
	avg, err := aggregation.Average(sum, float64(n))
	if err != nil {
		return GlobalModel{}, err
	}
	params, err := c.cfg.Server.Step(base.Params, avg)
	if err != nil {
		return GlobalModel{}, err
	}
	next := GlobalModel{Params: params, Meta: base.Meta}
	next.Meta.Version = base.Meta.Version + 1
	next.Meta.Parent = base.Meta.Version
	next.Meta.Round = closed.Round
	next.Meta.Created = c.cfg.Now().UTC()
	next.Meta.Participants = n
	next.Meta.MeanTrainLoss = lossSum / float64(n)
	if err := saveModel(ctx, c.cfg.Store, next); err != nil {
		return GlobalModel{}, err
	}
	return next, nil
}

// commit writes the state file if anything changed since the last write, and releases the
// handlers waiting for that. A failed write stops the coordinator: it must not acknowledge
// updates it cannot keep, and on restart it resumes from the last state written.
func (c *Coordinator) commit() error {
	c.mu.Lock()
	if !c.dirty {
		c.mu.Unlock()
		return nil
	}
	cm := c.pending
	c.pending = &commit{done: make(chan struct{})}
	c.dirty = false
	if c.state == nil {
		c.mu.Unlock()
		close(cm.done)
		return nil
	}
	st, err := c.snapshotLocked()
	c.mu.Unlock()
	if err == nil {
		err = c.state.save(st)
	}
	cm.err = err
	close(cm.done)
	if err != nil {
		return fmt.Errorf("coordinator: stopping, the state could not be saved: %w", err)
	}
	return nil
}

// durable waits until cm is written. c.mu must not be held.
func (c *Coordinator) durable(ctx context.Context, cm *commit) error {
	if c.state == nil {
		return nil
	}
	c.notify()
	select {
	case <-cm.done:
		return cm.err
	case <-c.stopped:
		return errors.New("the coordinator is stopping")
	case <-ctx.Done():
		return ctx.Err()
	}
}
