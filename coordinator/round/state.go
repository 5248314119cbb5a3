package round

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/vigilauth/vigil/aggregation"
)

// State is everything about the open round a restarted coordinator needs to resume it.
type State struct {
	Round       uint64
	BaseVersion uint64
	Started     time.Time
	Deadline    time.Time
	Closed      bool
	Tasks       []TaskState // sorted by device
	// Plan is the round's plan; zero restores with the Config's.
	Plan Plan
}

// TaskState is one selected device's task and whether its update is in the sum.
type TaskState struct {
	Device    string
	Nonce     []byte
	Submitted bool
}

// State returns the open round's state, or false if no round is open.
func (e *Engine) State() (State, bool) {
	c := e.cur
	if c == nil {
		return State{}, false
	}
	s := State{Round: c.id, BaseVersion: c.base, Started: c.started, Deadline: c.deadline, Closed: c.closed, Plan: c.plan}
	for d, t := range c.tasks {
		s.Tasks = append(s.Tasks, TaskState{Device: d, Nonce: t.nonce, Submitted: t.submitted})
	}
	sort.Slice(s.Tasks, func(i, j int) bool { return s.Tasks[i].Device < s.Tasks[j].Device })
	return s, true
}

// Restore reopens a round from its saved state, with sum holding exactly the updates of the
// tasks marked submitted. It refuses a closed round: its sum may already have been opened, and a
// multiparty decryption must never run twice on the same ciphertext.
func (e *Engine) Restore(s State, sum aggregation.Accumulator) error {
	if e.cur != nil {
		return fmt.Errorf("%w: round %d", ErrRoundOpen, e.cur.id)
	}
	if s.Closed {
		return fmt.Errorf("round: round %d was closed before the restart and cannot be resumed", s.Round)
	}
	if s.Round == 0 || !s.Deadline.After(s.Started) {
		return errors.New("round: saved round has no number or no collection period")
	}
	plan, err := e.plan(s.Plan)
	if err != nil {
		return fmt.Errorf("round: saved round %d: %w", s.Round, err)
	}
	tasks := make(map[string]*task, len(s.Tasks))
	submitted := 0
	for _, t := range s.Tasks {
		if len(t.Nonce) != NonceSize {
			return fmt.Errorf("round: saved task of %q has a %d-byte nonce", t.Device, len(t.Nonce))
		}
		if _, dup := tasks[t.Device]; dup {
			return fmt.Errorf("round: saved round lists device %q twice", t.Device)
		}
		tasks[t.Device] = &task{nonce: t.Nonce, submitted: t.Submitted}
		if t.Submitted {
			submitted++
		}
	}
	if submitted != sum.Count() {
		return fmt.Errorf("round: saved round marks %d updates submitted but its sum holds %d", submitted, sum.Count())
	}
	e.cur = &open{id: s.Round, base: s.BaseVersion, started: s.Started, deadline: s.Deadline, tasks: tasks, sum: sum, plan: plan}
	e.last = max(e.last, s.Round)
	return nil
}

// SetLastRound makes the next round number at least last+1.
func (e *Engine) SetLastRound(last uint64) { e.last = max(e.last, last) }

// Sum returns the open round's running sum, or nil.
func (e *Engine) Sum() aggregation.Accumulator {
	if e.cur == nil {
		return nil
	}
	return e.cur.sum
}
