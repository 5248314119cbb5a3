package coordinator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigilauth/vigil/trustee"
)

// ErrTrusteesAhead is fatal: a trustee has already decrypted a round at or after the one the
// coordinator would start next, so its state directory is not the one the trustees served (a
// fresh or restored directory). Every such round would be charged and fail; Run stops instead.
var ErrTrusteesAhead = errors.New("coordinator: the trustees have already decrypted this round number")

// readiness is implemented by a Sealing that needs others to open a sum: Ready says, before
// anything is charged, whether round's sum of contributors updates could be opened now.
type readiness interface {
	Ready(ctx context.Context, round uint64, contributors int) ([]trustee.Health, error)
}

// preflight asks the sealing whether it could open round now, records the trustees' health
// for the status and the metrics, and returns why not.
func (c *Coordinator) preflight(ctx context.Context, round uint64, contributors int) error {
	r, ok := c.sealing.(readiness)
	if !ok {
		return nil
	}
	health, err := r.Ready(ctx, round, contributors)
	c.mu.Lock()
	prev := c.trustees
	before := map[string]string{}
	for _, h := range prev {
		before[h.ID] = h.Problem
	}
	// A sealing that does not know its trustees' ids (the coordinator's --trustee flags give
	// them) names one that does not answer by its position, "#i", only.
	var positional []string
	for i := range health {
		if i >= len(prev) {
			break
		}
		switch was, now := prev[i].ID, health[i].ID; {
		case isPositional(now) && was != "" && !isPositional(was):
			// Keep the name it answered with before, so that its metrics and status stay
			// under one name.
			health[i].ID = was
		case isPositional(was) && !isPositional(now):
			// It answers for the first time: its problem was its position's, whose series
			// must not stay behind at 0 for good, and its recovery is logged.
			if _, known := before[now]; !known {
				before[now] = before[was]
			}
			positional = append(positional, was)
		}
	}
	c.trustees = health
	c.mu.Unlock()
	for _, id := range positional {
		c.metrics.trusteeUp.DeleteLabelValues(id)
	}
	for _, h := range health {
		// Each trustee's failure is logged when it starts and when it ends, even while the
		// others are enough: a third trustee that is down must not go unnoticed.
		if was, known := before[h.ID]; h.Problem != was || !known && h.Problem != "" {
			if h.Problem != "" {
				c.log.Warn("trustee cannot serve the next round", "trustee", h.ID, "round", round, "problem", h.Problem)
			} else {
				c.log.Info("trustee can serve rounds", "trustee", h.ID, "last_round", h.LastRound, "latency", h.Latency)
			}
		}
		up := 0.0
		if h.Problem == "" {
			up = 1
		}
		c.metrics.trusteeUp.WithLabelValues(h.ID).Set(up)
		if h.Reachable {
			c.metrics.trusteeLatency.WithLabelValues(h.ID).Observe(h.Latency.Seconds())
		}
	}
	if errors.Is(err, trustee.ErrRoundServed) {
		return fmt.Errorf("%w: %w", ErrTrusteesAhead, err)
	}
	return err
}

// isPositional says whether id is a trustee named by its position ("#i"), not by its id.
func isPositional(id string) bool { return strings.HasPrefix(id, "#") }

// backoffLocked holds the next round back after a failure: FailureBackoff doubled for every
// failure in a row, at most MaxBackoff, so trustees or devices that are down are not hammered
// and a storm of failing rounds cannot burn the budget. c.mu must be held.
func (c *Coordinator) backoffLocked(now time.Time) time.Duration {
	c.failures++
	d := c.cfg.FailureBackoff
	for i := 1; i < c.failures && d < c.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.cfg.MaxBackoff)
	if t := now.Add(d); t.After(c.notBefore) {
		c.notBefore = t // never earlier than the pacing allows
	}
	return d
}

// Pause stops new rounds from starting; the open round, if any, runs to its end. A pause
// survives a restart (a file "paused" in the state directory).
func (c *Coordinator) Pause() error {
	c.log.Info("rounds paused by the operator")
	return c.pause()
}

// pause stops new rounds, durably, as Pause does, for the operator or for the coordinator
// itself (an implausible sum).
func (c *Coordinator) pause() error {
	c.mu.Lock()
	c.paused = true
	c.mu.Unlock()
	c.metrics.paused.Set(1)
	if c.cfg.StateDir == "" {
		return nil
	}
	if err := os.WriteFile(filepath.Join(c.cfg.StateDir, "paused"), nil, 0o600); err != nil {
		return fmt.Errorf("coordinator: pause: %w", err)
	}
	return nil
}

// ErrNotPaused is returned by Resume when rounds are not paused: nothing is changed.
var ErrNotPaused = errors.New("coordinator: rounds are not paused")

// Resume lifts a pause, and only that: the next round still waits for the pacing
// (RoundInterval) and any back-off after failures, as it would have without the pause, so
// that neither resuming nor pausing and resuming can start rounds faster than they allow.
// When rounds are not paused it changes nothing and returns ErrNotPaused.
func (c *Coordinator) Resume() error {
	c.mu.Lock()
	paused := c.paused
	c.mu.Unlock()
	if !paused {
		return ErrNotPaused
	}
	// The file goes first: a pause that could not be lifted on disk is not lifted at all,
	// rather than come back at the next start.
	if c.cfg.StateDir != "" {
		if err := os.Remove(filepath.Join(c.cfg.StateDir, "paused")); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("coordinator: resume: %w", err)
		}
	}
	c.mu.Lock()
	c.paused = false
	notBefore := c.notBefore
	c.mu.Unlock()
	c.metrics.paused.Set(0)
	if now := c.cfg.Now(); notBefore.After(now) {
		c.log.Info("rounds resumed by the operator; the next round waits for the pacing or back-off", "next_round_not_before", notBefore.Format(time.RFC3339))
	} else {
		c.log.Info("rounds resumed by the operator")
	}
	c.notify()
	return nil
}

// ErrNoOpenRound is returned by Abort when no round is collecting updates.
var ErrNoOpenRound = errors.New("coordinator: no round is open")

// Abort fails the open round without opening its sum; devices' updates to it are discarded.
// The round is charged to the privacy ledger like one that failed for too few answers: the
// operator can see who answered before aborting. It returns the round's number. A round already closing (its sum being
// opened) cannot be aborted.
func (c *Coordinator) Abort(reason string) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cur := c.engine.Current()
	if cur == 0 || c.closing {
		return 0, ErrNoOpenRound
	}
	if reason == "" {
		reason = "aborted by the operator"
	}
	c.abort, c.abortedByOperator = reason, true
	c.notify()
	return cur, nil
}

func (c *Coordinator) loadPaused() {
	if c.cfg.StateDir == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(c.cfg.StateDir, "paused")); err == nil {
		c.paused = true
		c.metrics.paused.Set(1)
		c.log.Warn("rounds are paused (resume with `vigil admin resume`)")
	}
}
