package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// commit writes the state file if anything changed since the last write, and releases the
// handlers waiting for that. A failed write stops the coordinator: it must not acknowledge
// updates it cannot keep, and on restart it resumes from the last state written.
func (c *Coordinator) commit(ctx context.Context) error {
	c.mu.Lock()
	if !c.dirty && !(c.followed && c.cfg.Now().Sub(c.lastCommit) >= followedCommitEvery) {
		c.mu.Unlock()
		return nil
	}
	if wait := c.cfg.CommitEvery - c.cfg.Now().Sub(c.lastCommit); c.state != nil && wait > 0 {
		c.mu.Unlock()
		time.Sleep(wait)
		c.mu.Lock()
	}
	cm := c.pending
	c.pending = &commit{done: make(chan struct{})}
	c.dirty, c.followed = false, false
	c.lastCommit = c.cfg.Now()
	if c.state == nil {
		c.mu.Unlock()
		close(cm.done)
		return nil
	}
	if c.cfg.Leading != nil {
		if err := c.cfg.Leading(); err != nil {
			c.mu.Unlock()
			cm.err = err
			close(cm.done)
			return fmt.Errorf("coordinator: stopping, no longer the round leader: %w", err)
		}
	}
	st, err := c.snapshotLocked()
	var entries, seen []byte
	if err == nil {
		entries, seen, err = c.registryEntriesLocked(c.lastCommit)
	}
	if err == nil && c.registry != nil {
		st.RegistryEntries = uint64(c.registry.entries)
	}
	c.mu.Unlock()
	if err == nil {
		// The contributions the snapshot counts reach the disk before the count does.
		err = c.contribs.sync()
	}
	if err == nil && c.registry != nil {
		err = c.registry.write(entries, seen)
	}
	if err == nil {
		err = c.state.save(st)
	}
	if err == nil && c.cfg.Replicate != nil {
		err = c.cfg.Replicate(ctx, ReplicateState)
	}
	cm.err = err
	close(cm.done)
	if err != nil {
		return fmt.Errorf("coordinator: stopping, the state could not be saved: %w", err)
	}
	return nil
}

// durable waits until cm is written. Call it only after a change that set c.dirty under the
// same lock hold that read c.pending: a clean state is never written, so cm would wait for an
// unrelated change. c.mu must not be held.
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

// followedCommitEvery is how stale the state file's submissions of a round of the tier may be
// (commit.go, Coordinator.followed).
const followedCommitEvery = time.Second
