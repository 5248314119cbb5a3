package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	"github.com/vigilauth/vigil/trustee"
)

// Run drives rounds until cfg.Rounds have completed, the privacy budget is spent, or ctx ends.
// It is also what writes the durable state, so updates are acknowledged only while it runs.
// When the budget stops it, the error wraps dp.ErrBudgetExhausted.
func (c *Coordinator) Run(ctx context.Context) error {
	defer close(c.stopped)
	tick := time.NewTicker(c.cfg.TickInterval)
	defer tick.Stop()
	if c.cfg.Replicate != nil {
		// Opening the state may have cut a torn entry off the registry log: the copy takes
		// that before the first commit appends to it again (cluster.Root.Appended).
		if err := c.cfg.Replicate(ctx, ReplicateState); err != nil {
			return fmt.Errorf("coordinator: stopping, the state could not be copied: %w", err)
		}
	}
	if r := c.abandoned; r.Round != 0 {
		c.metrics.rounds.WithLabelValues("failed").Inc()
		c.emit(Event{Kind: RoundFailed, Round: r.Round, Selected: r.Selected, Accepted: r.Participants, Err: errors.New(r.Reason)})
		c.saveRecentRounds()
	}
	// The trustees are checked once at the start, so that a state directory they do not
	// match stops the coordinator at once rather than when the first devices have enrolled.
	c.mu.Lock()
	next := c.engine.LastRound()
	if c.engine.Current() == 0 {
		next++
	}
	c.mu.Unlock()
	if err := c.preflight(ctx, next, c.cfg.MinUpdates); errors.Is(err, ErrTrusteesAhead) {
		c.log.Error("refusing to start rounds", "round", next, "err", err)
		return err
	} else if err != nil {
		c.log.Warn("the trustees cannot serve rounds yet; rounds wait for them", "err", err)
	}
	if c.intake != nil && c.engine.Current() != 0 {
		c.startIntake(ctx)
	}
	for {
		c.publishPending(ctx)
		if err := c.commit(ctx); err != nil {
			return err
		}
		c.syncDevices(ctx)
		done, err := c.step(ctx)
		if err == nil {
			err = c.commit(ctx)
		}
		if now := c.cfg.Now(); err == nil && c.cfg.Replicate != nil && now.Sub(c.replicated) >= time.Second {
			// What was written outside a commit (an outbox, a pause, a pruned version),
			// without walking the store at every tick.
			c.replicated = now
			err = c.cfg.Replicate(ctx, ReplicateAll)
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
		c.mu.Unlock()
		return c.start(ctx, now)
	}
	c.pruneRevokedLocked(now) // also while a round runs: frontends elsewhere learn of it from the tier
	outcome, _ := c.engine.Decide(now)
	aborted, byOperator := c.abort, c.abortedByOperator
	if aborted != "" {
		outcome = aggregation.Fail
	}
	if deadline, ok := c.engine.Deadline(); ok && outcome == aggregation.Wait && c.intake != nil && c.intakeSealed(c.engine.Current()) {
		outcome, _ = c.engine.Decide(deadline) // nothing more can come: decide as at the deadline
	}
	if outcome == aggregation.Wait {
		c.mu.Unlock()
		return false, nil
	}
	if c.intake != nil && aborted == "" {
		id := c.engine.Current()
		c.mu.Unlock()
		if c.cfg.Leading != nil {
			if err := c.cfg.Leading(); err != nil {
				return false, fmt.Errorf("coordinator: stopping, no longer the round leader: %w", err)
			}
		}
		// The seal fixes the participant set; the sum has every update in it once
		// the follower has drained them, and only then is the outcome final.
		cctx, cancel := context.WithTimeout(ctx, c.cfg.TickInterval+10*time.Second)
		err := c.closeIntake(cctx, id)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false, ctx.Err()
			}
			c.log.Warn("the round could not be closed in the tier yet; trying again", "round", id, "err", err)
			return false, nil
		}
		c.mu.Lock()
		if outcome, _ = c.engine.Decide(c.cfg.Now()); outcome == aggregation.Wait {
			// Sealed: the round takes no more updates, so it is decided as at its deadline.
			deadline, _ := c.engine.Deadline()
			outcome, _ = c.engine.Decide(deadline)
		}
	}
	closed, err := c.engine.Close()
	if err != nil {
		c.mu.Unlock()
		return false, fmt.Errorf("coordinator: %w", err)
	}
	info := c.open
	c.dirty = true
	c.closing = true
	c.mu.Unlock()
	failure := "nothing charged or released"
	if aborted == "" && outcome != aggregation.Close || byOperator {
		// Charged before the commit that records the round closed, which copies the ledger
		// with it: a successor either finds both or decides the round again.
		failure = c.chargeFailure(closed, info)
	}
	// The frozen participant set is on disk before anyone is asked to open the sum.
	if err := c.commit(ctx); err != nil {
		return false, err
	}

	var next GlobalModel
	stages := []stage{{StageCollecting, now.Sub(closed.Started)}}
	switch {
	case aborted != "":
		err = fmt.Errorf("%s; %s", aborted, failure)
	case outcome == aggregation.Close:
		next, err = c.timedRelease(ctx, closed, info, &stages)
		if errors.Is(err, aggregation.ErrImplausibleSum) {
			// A device sent a ciphertext outside the bounds: it can do so in every round it
			// is sampled for, and each is charged before the sum is opened. Rounds stop until
			// the operator has retired the key epoch (and, if known, the device).
			if perr := c.pause(); perr != nil {
				c.log.Error("could not record the pause", "err", perr)
			}
			c.log.Error("rounds paused: the round's sum was implausible; retire the key epoch, then `vigil admin resume`", "round", closed.Round, "err", err)
			err = fmt.Errorf("%w; rounds are paused until an operator resumes them", err)
		}
		if err == nil && c.cfg.Replicate != nil {
			// The version is in the store before the state that counts it is copied.
			if err := c.cfg.Replicate(ctx, ReplicateAll); err != nil {
				return false, fmt.Errorf("coordinator: stopping, the released version is not replicated: %w", err)
			}
		}
	default:
		err = fmt.Errorf("only %d of %d sampled devices answered by the deadline; at least %d are needed; %s",
			len(closed.Participants), closed.Selected, max(c.cfg.MinUpdates, info.privacy.minParticipants), failure)
	}
	end := c.cfg.Now()
	dur := end.Sub(closed.Started)

	c.mu.Lock()
	c.engine.Finish()
	c.dirty = true
	c.closing, c.abort, c.abortedByOperator = false, "", false
	sum := roundSummary{Round: closed.Round, Selected: closed.Selected, Participants: len(closed.Participants), Ended: end, Duration: dur}
	var wait time.Duration
	if err == nil {
		switch {
		case info.kind == statev1.RoundKind_ROUND_KIND_POPULATION_STATS:
			info.population.model = next
			info.population.unpublished = next.Meta.Version
		case info.kind == statev1.RoundKind_ROUND_KIND_REFERENCE_STATS:
			info.population.reference = next
		default:
			c.global = next
			c.unpublished = next.Meta.Version
			c.completed++
		}
		c.failures = 0
		sum.Outcome, sum.Version = "completed", next.Meta.Version
	} else {
		wait = c.backoffLocked(end)
		sum.Outcome, sum.Reason = "failed", err.Error()
		if isPopulationKind(info.kind) {
			info.population.failed = closed.Round
		}
	}
	sum.Stages = stages
	// A round that failed because the coordinator is stopping is not over: the state file
	// still has it closing, and the next start gives it up and says so (giveUp).
	stopping := err != nil && ctx.Err() != nil
	if !stopping {
		c.lastRound = sum
		c.rememberRoundLocked(sum)
	}
	c.mu.Unlock()
	if !stopping {
		c.saveRecentRounds()
	}

	c.metrics.roundDuration.Observe(dur.Seconds())
	if c.intake != nil {
		c.forgetIntake(ctx, closed.Round)
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if errors.Is(err, ErrTrusteesAhead) {
			return true, err
		}
		c.metrics.rounds.WithLabelValues("failed").Inc()
		c.log.Warn("round failed", "round", closed.Round, "err", err, "duration", dur, "next_try_in", wait)
		c.emit(Event{Kind: RoundFailed, Round: closed.Round, Selected: closed.Selected, Accepted: len(closed.Participants), Duration: dur, Err: err})
		return false, nil
	}
	eps, delta := c.spent()
	c.metrics.rounds.WithLabelValues("completed").Inc()
	c.metrics.participants.Set(float64(len(closed.Participants)))
	if !isPopulationKind(info.kind) {
		c.metrics.globalVersion.Set(float64(next.Meta.Version))
	}
	c.metrics.epsilon.Set(eps)
	c.setRemaining()
	c.log.Info("round completed", "round", closed.Round, "model", next.Meta.Name, "version", next.Meta.Version,
		"participants", len(closed.Participants), "selected", closed.Selected, "duration", dur, "epsilon", eps)
	c.emit(Event{Kind: RoundCompleted, Round: closed.Round, Selected: closed.Selected, Accepted: len(closed.Participants),
		Model: next.Meta.Name, Version: next.Meta.Version, Duration: dur, Epsilon: eps, Delta: delta})
	c.publishPending(ctx)
	c.pruneVersions(ctx)
	return false, nil
}

// roundSummary is how the last round ended, for the operator's status; the recent ones are
// saved in the state directory as JSON (recentRoundsFile).
type roundSummary struct {
	Round        uint64        `json:"round"`
	Outcome      string        `json:"outcome"`
	Reason       string        `json:"reason,omitempty"`
	Selected     int           `json:"selected"`
	Participants int           `json:"participants"`
	Version      uint64        `json:"version,omitempty"`
	Ended        time.Time     `json:"ended"`
	Duration     time.Duration `json:"duration_ns"`
	Stages       []stage       `json:"stages,omitempty"`
}

// openRound is what the coordinator remembers about the open round besides the engine's state.
type openRound struct {
	round   uint64
	privacy roundPrivacy
	kind    statev1.RoundKind
	// population is the population a population or reference round serves.
	population *population
	// dim is the length of the round's updates.
	dim int
}

// start opens the next round if the configuration, the enrolled devices and the privacy budget
// allow it. done is true when no round will ever start again.
func (c *Coordinator) start(ctx context.Context, now time.Time) (done bool, err error) {
	c.mu.Lock()
	if c.cfg.Rounds > 0 && c.completed >= c.cfg.Rounds {
		c.mu.Unlock()
		return true, nil
	}
	// Revoked devices leave at once, paused or not, so that the status and the enrolled
	// gauge say what the next round will sample.
	c.pruneRevokedLocked(now)
	if c.paused || now.Before(c.notBefore) {
		c.mu.Unlock()
		return false, nil
	}
	if n := len(c.devices); n < c.cfg.MinEnrolled || n < c.cfg.DevicesPerRound {
		// Fewer devices than a round expects (q = K/N > 1), say after revocations, or than the
		// first round waits for: wait for enrolments rather than stop, and say so once, since
		// an operator trying two devices against the default of ten saw nothing happen.
		if !c.waitingForDevices {
			level := slog.LevelInfo
			if n >= c.cfg.MinEnrolled {
				level = slog.LevelWarn
			}
			c.log.Log(ctx, level, "rounds wait for devices: fewer are enrolled than a round samples (--devices-per-round) or the first round waits for (--min-enrolled)",
				"enrolled", n, "devices_per_round", c.cfg.DevicesPerRound, "min_enrolled", c.cfg.MinEnrolled)
		}
		c.waitingForDevices = true
		c.mu.Unlock()
		return false, nil
	}
	c.waitingForDevices = false
	next := c.engine.LastRound() + 1
	c.mu.Unlock()
	// The trustees are asked before the round starts, so that devices do not train, and the
	// budget is not charged, for a round no quorum of trustees could open.
	if err := c.preflight(ctx, next, c.cfg.MinUpdates); err != nil {
		if errors.Is(err, ErrTrusteesAhead) {
			c.log.Error("refusing to start rounds", "round", next, "err", err)
			return true, err
		}
		if ctx.Err() != nil {
			return false, ctx.Err() // stopping: the trustees were not asked to no avail
		}
		c.mu.Lock()
		wait := c.backoffLocked(c.cfg.Now())
		c.mu.Unlock()
		c.metrics.preflightFailures.Inc()
		c.log.Warn("round not started: the trustees cannot serve it; nothing charged", "round", next, "err", err, "next_try_in", wait)
		return false, nil
	}
	c.mu.Lock()
	if c.engine.Current() != 0 || c.paused {
		c.mu.Unlock()
		return false, nil
	}
	ids := c.sortedIDs.sorted(c.devices)
	pop, kind := c.populationDueLocked(c.engine.LastRound()+1, len(ids))
	rp, plan, dim, err := c.roundSetup(kind, pop, len(ids))
	if err != nil {
		c.mu.Unlock()
		return false, fmt.Errorf("coordinator: %w", err)
	}
	if c.ledger != nil && !rp.insecureNoDP {
		if _, _, err := c.ledger.Check(rp.event()); err != nil {
			c.mu.Unlock()
			c.log.Info("no further rounds: the privacy budget would be exceeded", "err", err)
			return true, fmt.Errorf("coordinator: %w", err)
		}
	}
	sum, err := c.newRoundSum(dim)
	if err != nil {
		c.mu.Unlock()
		return false, fmt.Errorf("coordinator: %w", err)
	}
	c.dirty = true
	id, selected, err := c.engine.StartPlan(now, plan, c.global.Meta.Version, ids, sum, c.cfg.Rand)
	// The round's privacy is saved with it by the commit below, before any device is asked.
	c.open = openRound{round: id, privacy: rp, kind: kind, population: pop, dim: dim}
	if c.cfg.RoundInterval > 0 {
		c.notBefore = now.Add(c.cfg.RoundInterval)
	}
	if err != nil {
		c.backoffLocked(now)
	}
	c.mu.Unlock()
	if err != nil {
		c.metrics.rounds.WithLabelValues("failed").Inc()
		c.log.Warn("round not started", "round", id, "err", err)
		c.emit(Event{Kind: RoundFailed, Round: id, Err: err})
		return false, nil
	}
	// Tasks go out only once the round is on disk, so a round number is never reused.
	if err := c.commit(ctx); err != nil {
		return false, err
	}
	if c.intake != nil {
		// Before any device hears of the round: a frontend needs its plan.
		c.startIntake(ctx)
	}
	c.mu.Lock()
	c.servable = id
	close(c.opened)
	c.opened = make(chan struct{})
	c.mu.Unlock()
	c.log.Info("round started", "round", id, "kind", kindName(kind), "base_version", c.global.Meta.Version, "selected", len(selected), "enrolled", len(ids))
	c.emit(Event{Kind: RoundStarted, Round: id, Selected: len(selected)})
	return false, nil
}

// chargeFailure charges a round that failed for too few answers, or that the operator
// aborted, to the privacy ledger and says what was done. Whether such a round fails depends on
// who answered (the operator's status lists the devices that have not): a device that always
// answers is in more of the rounds that succeed than q says, so charging only those would
// undercount it. Charging every round that may fail on who answered, at the chance of being
// asked, counts each round a device may have been in. Rounds that fail for the trustees or
// the tier fail whoever answered, and are not charged.
func (c *Coordinator) chargeFailure(closed round.Closed, info openRound) string {
	if c.ledger == nil || info.privacy.insecureNoDP {
		return "nothing charged or released"
	}
	if info.privacy.samplingRate >= 1 {
		// Every device was asked (population rounds): a released round is charged at q = 1,
		// which no choice of the rounds that fail can make too little.
		return "nothing charged or released (every device was asked)"
	}
	if _, err := c.ledger.ChargeRound(info.privacy.charge(closed.Round, len(closed.Participants), c.cfg.Now())); err != nil {
		c.log.Error("the failed round could not be charged to the privacy ledger", "round", closed.Round, "err", err)
		return fmt.Sprintf("nothing released; charging the privacy ledger failed: %v", err)
	}
	return "charged to the privacy ledger (whether a round fails can depend on who answered), nothing released"
}

// release charges the round to the privacy ledger, opens the closed round's sum, applies the
// server optimiser and stores the new version.
func (c *Coordinator) release(ctx context.Context, closed round.Closed, info openRound) (GlobalModel, error) {
	var (
		charged dp.LedgerEntry
		err     error
	)
	// The trustees are asked again, with the round's participant count, before anything is
	// charged: a round they cannot open must not spend the budget.
	if err := c.preflight(ctx, closed.Round, len(closed.Participants)); err != nil {
		return GlobalModel{}, fmt.Errorf("the trustees cannot open the sum; nothing charged: %w", err)
	}
	// A round of the tier: the frontends' partial sums, and the updates whose frontend did not
	// hand them over, read from the tier, before anything is charged.
	toOpen := closed.Sum
	var contribs trustee.Contributions
	if ps, ok := toOpen.(*partedSum); ok {
		if toOpen, contribs, err = c.gatherParts(ctx, closed.Round, ps); err != nil {
			return GlobalModel{}, fmt.Errorf("nothing charged: %w", err)
		}
	}
	if c.ledger != nil {
		// Charged before the sum is opened: a crash after opening must not leave it uncounted.
		if charged, err = c.ledger.ChargeRound(info.privacy.charge(closed.Round, len(closed.Participants), c.cfg.Now())); err != nil {
			return GlobalModel{}, fmt.Errorf("privacy ledger: %w", err)
		}
		if c.cfg.Replicate != nil {
			// A successor must know of the charge before anyone can know the sum.
			if err := c.cfg.Replicate(ctx, ReplicateState); err != nil {
				return GlobalModel{}, fmt.Errorf("the charge is not replicated; the sum stays sealed: %w", err)
			}
		}
	}
	if _, encrypted := c.sealing.(*ThresholdHE); encrypted && contribs == nil {
		if contribs, err = c.contribs.of(closed.Round, closed.Sum.Count()); err != nil {
			return GlobalModel{}, err
		}
	}
	sum, err := c.sealing.Open(ctx, closed.Round, toOpen, contribs,
		trustee.RoundPrivacy{ClipNorm: info.privacy.clipNorm, MinParticipants: uint32(info.privacy.minParticipants)})
	if err != nil {
		return GlobalModel{}, fmt.Errorf("open the sum: %w", err)
	}
	if err := checkPlausible(sum, len(closed.Participants), info.privacy); err != nil {
		c.log.Error("decrypted sum refused", "round", closed.Round, "err", err)
		return GlobalModel{}, err
	}
	if isPopulationKind(info.kind) {
		var next GlobalModel
		if info.kind == statev1.RoundKind_ROUND_KIND_REFERENCE_STATS {
			var ref models.Reference
			if next, ref, err = c.learnReference(ctx, info.population, closed, info, sum, charged); err == nil {
				c.mu.Lock()
				err = info.population.setReference(ref)
				c.mu.Unlock()
			}
		} else {
			next, err = c.releasePopulation(ctx, info.population, closed, info, sum, charged)
		}
		if err == nil && c.ledger != nil {
			if err := c.ledger.RecordRelease(closed.Round, next.Meta.ParamsSHA256); err != nil {
				c.log.Warn("released population's hash not yet in the privacy ledger", "round", closed.Round, "err", err)
			}
		}
		return next, err
	}
	n := len(closed.Participants)
	denominator := float64(n)
	if !info.privacy.insecureNoDP {
		denominator = info.privacy.expected
	}
	avg, err := aggregation.Average(sum, denominator)
	if err != nil {
		return GlobalModel{}, err
	}
	base := c.Global()
	params, err := c.cfg.Server.Step(base.Params, avg)
	if err != nil {
		return GlobalModel{}, err
	}
	next := GlobalModel{Params: params, Meta: base.Meta}
	next.Meta.Version = base.Meta.Version + 1
	next.Meta.Parent = base.Meta.Version
	next.Meta.Round = closed.Round
	next.Meta.Created = c.cfg.Now().UTC()
	next.Meta.Privacy = info.privacy.meta(charged, c.ledger)
	next.Participants = n
	if err := saveModel(ctx, c.cfg.Store, &next); err != nil {
		return GlobalModel{}, err
	}
	if c.ledger != nil {
		// The version is stored, so the round has happened; a hash not yet in the ledger is
		// recorded at the next start (openLedger), so this failure only delays it.
		if err := c.ledger.RecordRelease(closed.Round, next.Meta.ParamsSHA256); err != nil {
			c.log.Warn("released model's hash not yet in the privacy ledger", "round", closed.Round, "err", err)
		}
	}
	return next, nil
}

// publishPending hands the newest version of the global model, and of the population model,
// to the Publisher if it has not taken them yet, at most once a second while it keeps failing.
func (c *Coordinator) publishPending(ctx context.Context) {
	c.mu.Lock()
	type unpublished struct {
		v     uint64
		g     GlobalModel
		taken *uint64
	}
	pending := []unpublished{{c.unpublished, c.global, &c.unpublished}}
	some := c.unpublished != 0
	for _, p := range c.pops {
		pending = append(pending, unpublished{p.unpublished, p.model, &p.unpublished})
		some = some || p.unpublished != 0
	}
	due := some && c.cfg.Now().Sub(c.lastPublishTry) >= time.Second
	if due {
		c.lastPublishTry = c.cfg.Now()
	}
	c.mu.Unlock()
	if !due || c.cfg.Publisher == nil {
		return
	}
	eps, delta := c.spent()
	failed := false
	for _, p := range pending {
		if p.v == 0 || p.g.Meta.Version != p.v {
			continue
		}
		if err := c.timedPublish(ctx, p.g, eps, delta); err != nil {
			c.log.Warn("release not yet handed to the publisher; will retry", "model", p.g.Meta.Name, "version", p.v, "err", err)
			failed = true
			continue
		}
		c.mu.Lock()
		if *p.taken == p.v {
			*p.taken = 0
		}
		c.mu.Unlock()
	}
	if !failed {
		c.mu.Lock()
		c.lastPublishTry = time.Time{}
		c.mu.Unlock()
	}
}

// populationName is the name of the population the round serves, empty for a training round.
func (o openRound) populationName() string {
	if o.population == nil {
		return ""
	}
	return o.population.cfg.ModelName
}
