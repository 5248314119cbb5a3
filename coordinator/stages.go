package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/internal/atomicfile"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// The stages of a round, in order, as the operator's status names them. A round that fails
// has the stages it got through; a coordinator without trustees has no committing or
// decryption stage (its sum is opened while charging and storing).
const (
	StageCollecting = "collecting updates"
	StageCommitting = "trustees committing"
	StageDecrypting = "decryption"
	StageStoring    = "charging and storing"
	StagePublishing = "publishing"
	// StageFailing is the time from the last stage that completed to a failure.
	StageFailing = "until the failure"
)

// maxRecentRounds bounds the ended rounds the status reports: enough for an operator to see a
// trend (a stage that grows), few enough that the status stays small.
const maxRecentRounds = 20

// stage is how long one stage of a round took.
type stage struct {
	Name string        `json:"name"`
	Took time.Duration `json:"took_ns"`
}

// stageClock collects the stages of the round being released. The trustees' stages are timed
// inside the sealing, which the round's code reaches only through the context, so the clock
// travels in it.
type stageClock struct {
	mu     sync.Mutex
	stages []stage
}

type stageClockKey struct{}

// addStage records a stage on the context's clock, if it carries one.
func addStage(ctx context.Context, name string, took time.Duration) {
	if sc, ok := ctx.Value(stageClockKey{}).(*stageClock); ok {
		sc.mu.Lock()
		sc.stages = append(sc.stages, stage{name, took})
		sc.mu.Unlock()
	}
}

// timedRelease is release with its stages appended to stages: the trustees' (added by the
// sealing) and the rest of the release, charging the ledger and storing the version.
func (c *Coordinator) timedRelease(ctx context.Context, closed round.Closed, info openRound, stages *[]stage) (GlobalModel, error) {
	sc := &stageClock{}
	began := time.Now()
	next, err := c.release(context.WithValue(ctx, stageClockKey{}, sc), closed, info)
	rest := time.Since(began)
	for _, s := range sc.stages {
		rest -= s.Took
	}
	*stages = append(*stages, sc.stages...)
	name := StageStoring
	if err != nil {
		name = StageFailing // where in the release it failed, the round's reason says
	}
	*stages = append(*stages, stage{name, rest})
	return next, err
}

// timedPublish is publish, timed: once the Publisher took the version, the round that made
// it gets its publishing stage.
func (c *Coordinator) timedPublish(ctx context.Context, m GlobalModel, epsilon, delta float64) error {
	began := time.Now()
	if err := c.publish(ctx, m, epsilon, delta); err != nil {
		return err
	}
	took := stage{StagePublishing, time.Since(began)}
	c.mu.Lock()
	if c.lastRound.Version == m.Meta.Version {
		c.lastRound.Stages = append(slices.Clip(c.lastRound.Stages), took)
	}
	for i := range c.recentRounds {
		if r := &c.recentRounds[i]; r.Version == m.Meta.Version {
			r.Stages = append(slices.Clip(r.Stages), took)
		}
	}
	c.mu.Unlock()
	c.saveRecentRounds()
	return nil
}

// rememberRoundLocked keeps sum, the round that just ended, among the recent rounds.
func (c *Coordinator) rememberRoundLocked(sum roundSummary) {
	sum.Stages = slices.Clone(sum.Stages)
	c.recentRounds = slices.Insert(c.recentRounds, 0, sum)
	if len(c.recentRounds) > maxRecentRounds {
		c.recentRounds = c.recentRounds[:maxRecentRounds]
	}
}

// roundStatus is an ended round as the operator's status shows it.
func roundStatus(l roundSummary) *vigilv1.LastRoundStatus {
	st := &vigilv1.LastRoundStatus{Round: l.Round, Outcome: l.Outcome, Reason: l.Reason, Selected: uint32(l.Selected),
		Participants: uint32(l.Participants), Version: l.Version, Ended: timestamppb.New(l.Ended), DurationSeconds: l.Duration.Seconds()}
	for _, s := range l.Stages {
		st.Stages = append(st.Stages, &vigilv1.RoundStage{Name: s.Name, Seconds: s.Took.Seconds()})
	}
	return st
}

// recentRoundsStatusLocked is the recent rounds for the status, newest first.
func (c *Coordinator) recentRoundsStatusLocked() []*vigilv1.LastRoundStatus {
	out := make([]*vigilv1.LastRoundStatus, 0, len(c.recentRounds))
	for _, r := range c.recentRounds {
		out = append(out, roundStatus(r))
	}
	return out
}

// recentRoundsFile, in the state directory, keeps the recent rounds' summaries, so that the
// status has them after a restart; maxRecentRoundsBytes bounds what is read of it.
const (
	recentRoundsFile     = "rounds.json"
	maxRecentRoundsBytes = 1 << 20
)

// saveRecentRounds writes the recent rounds to the state directory. They are the status's
// only: a failure is logged and the run goes on. Only Run's goroutine calls it, so writes
// do not overtake each other.
func (c *Coordinator) saveRecentRounds() {
	if c.cfg.StateDir == "" {
		return
	}
	c.mu.Lock()
	raw, err := json.Marshal(c.recentRounds)
	c.mu.Unlock()
	if err == nil {
		err = atomicfile.Write(filepath.Join(c.cfg.StateDir, recentRoundsFile), raw, 0o600)
	}
	if err != nil {
		c.log.Warn("the recent rounds were not saved for the status after a restart", "err", err)
	}
}

// readRecentRounds reads the recent rounds saved in stateDir, newest first; none if there are
// none or they cannot be read (err says why).
func readRecentRounds(stateDir string) ([]roundSummary, error) {
	path := filepath.Join(stateDir, recentRoundsFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxRecentRoundsBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > maxRecentRoundsBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxRecentRoundsBytes)
	}
	var out []roundSummary
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return out[:min(len(out), maxRecentRounds)], nil
}

// loadRecentRounds gives the status the recent rounds of the run before the restart.
func (c *Coordinator) loadRecentRounds() {
	rounds, err := readRecentRounds(c.cfg.StateDir)
	if err != nil {
		c.log.Warn("the recent rounds before the restart are not in the status", "err", err)
		return
	}
	c.recentRounds = rounds
	if len(rounds) > 0 {
		c.lastRound = rounds[0]
	}
}
