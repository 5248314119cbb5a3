// Package round is the federated round protocol as a pure state machine: it samples devices,
// hands out tasks bound to (round, device, nonce), accepts or rejects updates, and says when a
// round must close or fail. It does no I/O and reads no clock; the coordinator's loop feeds it
// the time and carries out its decisions, so a protocol trace can be replayed in a test.
package round

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// NonceSize is the length of the random nonce that binds an update to its task.
const NonceSize = 16

// Errors callers branch on (and map to gRPC codes).
var (
	ErrNoRound       = errors.New("round: no round is open")
	ErrRoundOpen     = errors.New("round: a round is already open")
	ErrUnknownRound  = errors.New("round: unknown round")
	ErrNotSelected   = errors.New("round: device not selected for this round")
	ErrDuplicate     = errors.New("round: device already submitted in this round")
	ErrBadNonce      = errors.New("round: nonce does not match the task")
	ErrStaleBase     = errors.New("round: update computed against another model version")
	ErrDeadline      = errors.New("round: deadline passed")
	ErrClosed        = errors.New("round: round is closed to new updates")
	ErrTooFewDevices = errors.New("round: too few devices to sample from")
)

// Config sets how rounds are run.
type Config struct {
	// ExpectedParticipants is K: each enrolled device is sampled independently with probability
	// min(1, K/N) (Poisson sampling, which the privacy accountant assumes).
	ExpectedParticipants int
	// Quorum decides when a round closes or fails.
	Quorum aggregation.Quorum
	// Timeout is how long a round collects updates.
	Timeout time.Duration
}

func (c Config) validate() error {
	if c.ExpectedParticipants < 1 {
		return fmt.Errorf("round: expected participants %d must be at least 1", c.ExpectedParticipants)
	}
	if err := c.Quorum.Validate(); err != nil {
		return err
	}
	if c.Quorum.Min > c.ExpectedParticipants {
		return fmt.Errorf("round: minimum updates %d exceed the expected participants %d", c.Quorum.Min, c.ExpectedParticipants)
	}
	if c.Timeout <= 0 {
		return fmt.Errorf("round: timeout %v must be positive", c.Timeout)
	}
	return nil
}

// Plan is how one round samples devices and when it may close. A zero Plan is the Config's.
type Plan struct {
	// Expected is K: each enrolled device is sampled with probability min(1, K/N).
	Expected int
	Quorum   aggregation.Quorum
}

func (p Plan) validate() error {
	return Config{ExpectedParticipants: p.Expected, Quorum: p.Quorum, Timeout: 1}.validate()
}

// Task is what a selected device is asked to do.
type Task struct {
	Round       uint64
	Device      string
	Nonce       []byte
	BaseVersion uint64
	Deadline    time.Time
}

// Submission is a device's answer to its task.
type Submission struct {
	Device      string
	Round       uint64
	Nonce       []byte
	BaseVersion uint64
	Update      *vigilv1.Update
}

// Closed is a round whose participant set is frozen.
type Closed struct {
	Round        uint64
	BaseVersion  uint64
	Started      time.Time
	Participants []string // sorted device IDs whose updates are in the sum
	Selected     int
	Sum          aggregation.Accumulator
}

type task struct {
	nonce     []byte
	submitted bool
}

type open struct {
	id       uint64
	base     uint64
	started  time.Time
	deadline time.Time
	tasks    map[string]*task
	sum      aggregation.Accumulator
	closed   bool
	plan     Plan
}

// Engine runs one round at a time. It is not safe for concurrent use; the coordinator holds a
// lock around it.
type Engine struct {
	cfg  Config
	last uint64
	cur  *open
}

// New returns an Engine whose next round is lastRound+1.
func New(cfg Config, lastRound uint64) (*Engine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg, last: lastRound}, nil
}

// LastRound is the number of the latest round started.
func (e *Engine) LastRound() uint64 { return e.last }

// Current returns the open round's number, or 0.
func (e *Engine) Current() uint64 {
	if e.cur == nil {
		return 0
	}
	return e.cur.id
}

// Deadline returns the open round's deadline; false if no round is open.
func (e *Engine) Deadline() (time.Time, bool) {
	if e.cur == nil {
		return time.Time{}, false
	}
	return e.cur.deadline, true
}

// Start opens the next round on model version base. Each enrolled device is sampled with
// probability min(1, K/N); rnd supplies the sampling coins and the nonces and must be a
// cryptographic source outside tests. sum receives the round's updates. If fewer than the
// quorum minimum are sampled, the round number is used up and ErrTooFewDevices returned.
func (e *Engine) Start(now time.Time, base uint64, enrolled []string, sum aggregation.Accumulator, rnd io.Reader) (uint64, []string, error) {
	return e.StartPlan(now, Plan{}, base, enrolled, sum, rnd)
}

// StartPlan is Start with the round's own plan (a zero Plan is the Config's).
func (e *Engine) StartPlan(now time.Time, plan Plan, base uint64, enrolled []string, sum aggregation.Accumulator, rnd io.Reader) (uint64, []string, error) {
	if e.cur != nil {
		return 0, nil, fmt.Errorf("%w: round %d", ErrRoundOpen, e.cur.id)
	}
	plan, err := e.plan(plan)
	if err != nil {
		return 0, nil, err
	}
	devices := append([]string(nil), enrolled...)
	sort.Strings(devices)
	q := float64(plan.Expected) / float64(max(len(devices), 1))
	selected := make([]string, 0, min(len(devices), 2*plan.Expected))
	tasks := map[string]*task{}
	var coin [8]byte
	for _, d := range devices {
		if q < 1 {
			if _, err := io.ReadFull(rnd, coin[:]); err != nil {
				return 0, nil, fmt.Errorf("round: sampling: %w", err)
			}
			if float64(binary.LittleEndian.Uint64(coin[:])>>11)/(1<<53) >= q {
				continue
			}
		}
		nonce := make([]byte, NonceSize)
		if _, err := io.ReadFull(rnd, nonce); err != nil {
			return 0, nil, fmt.Errorf("round: nonce: %w", err)
		}
		tasks[d] = &task{nonce: nonce}
		selected = append(selected, d)
	}
	e.last++
	if len(selected) < plan.Quorum.Min {
		return e.last, nil, fmt.Errorf("%w: round %d sampled %d of %d enrolled devices, the minimum is %d",
			ErrTooFewDevices, e.last, len(selected), len(devices), plan.Quorum.Min)
	}
	e.cur = &open{id: e.last, base: base, started: now, deadline: now.Add(e.cfg.Timeout), tasks: tasks, sum: sum, plan: plan}
	return e.last, selected, nil
}

// plan returns p, or the Config's plan when p is zero.
func (e *Engine) plan(p Plan) (Plan, error) {
	if p == (Plan{}) {
		return Plan{Expected: e.cfg.ExpectedParticipants, Quorum: e.cfg.Quorum}, nil
	}
	if err := p.validate(); err != nil {
		return Plan{}, err
	}
	return p, nil
}

// Plan returns the open round's plan.
func (e *Engine) Plan() (Plan, bool) {
	if e.cur == nil {
		return Plan{}, false
	}
	return e.cur.plan, true
}

// Task returns the device's task in the open round, if it has one it has not yet done.
func (e *Engine) Task(device string) (Task, bool) {
	if e.cur == nil || e.cur.closed {
		return Task{}, false
	}
	t, ok := e.cur.tasks[device]
	if !ok || t.submitted {
		return Task{}, false
	}
	return Task{Round: e.cur.id, Device: device, Nonce: t.nonce, BaseVersion: e.cur.base, Deadline: e.cur.deadline}, true
}

// Submit checks s against its task and adds its update to the round's sum. It returns the number
// of updates accepted so far. A rejected submission changes nothing.
func (e *Engine) Submit(now time.Time, s Submission) (int, error) {
	if err := e.Check(now, s); err != nil {
		return 0, err
	}
	c := e.cur
	if err := c.sum.Add(aggregation.Origin{Round: s.Round, Device: s.Device, Nonce: s.Nonce}, s.Update); err != nil {
		return 0, err
	}
	c.tasks[s.Device].submitted = true
	return c.sum.Count(), nil
}

// Check says whether Submit would take s as far as the round's tasks go (round, deadline,
// selection, nonce, base version), without adding it: what an aggregation frontend checks
// before it acknowledges an update that the round leader adds later.
func (e *Engine) Check(now time.Time, s Submission) error {
	c := e.cur
	switch {
	case c == nil:
		return fmt.Errorf("%w: round %d (none is open)", ErrUnknownRound, s.Round)
	case s.Round != c.id:
		return fmt.Errorf("%w: round %d (the open round is %d)", ErrUnknownRound, s.Round, c.id)
	}
	t, ok := c.tasks[s.Device]
	if ok && t.submitted {
		// Said even once the round has closed: the device that sends again, not having heard
		// the answer, learns that its update is in, not that it missed the round.
		return fmt.Errorf("%w: device %q, round %d", ErrDuplicate, s.Device, c.id)
	}
	switch {
	case c.closed:
		return fmt.Errorf("%w: round %d", ErrClosed, c.id)
	case now.After(c.deadline):
		return fmt.Errorf("%w: round %d closed for updates at %s", ErrDeadline, c.id, c.deadline.Format(time.RFC3339Nano))
	case !ok:
		return fmt.Errorf("%w: device %q, round %d", ErrNotSelected, s.Device, c.id)
	case !bytes.Equal(s.Nonce, t.nonce):
		return fmt.Errorf("%w: device %q, round %d", ErrBadNonce, s.Device, c.id)
	case s.BaseVersion != c.base:
		return fmt.Errorf("%w: version %d, the round trains version %d", ErrStaleBase, s.BaseVersion, c.base)
	}
	return nil
}

// Decide applies the quorum rule to the open round at time now.
func (e *Engine) Decide(now time.Time) (aggregation.Outcome, error) {
	if e.cur == nil {
		return aggregation.Wait, ErrNoRound
	}
	return e.cur.plan.Quorum.Decide(e.cur.sum.Count(), len(e.cur.tasks), !now.Before(e.cur.deadline)), nil
}

// Close freezes the open round's participant set and hands over its sum. No update is accepted
// afterwards; the round stays open until Finish.
func (e *Engine) Close() (Closed, error) {
	c := e.cur
	if c == nil {
		return Closed{}, ErrNoRound
	}
	if c.closed {
		return Closed{}, fmt.Errorf("%w: round %d", ErrClosed, c.id)
	}
	c.closed = true
	var parts []string
	for d, t := range c.tasks {
		if t.submitted {
			parts = append(parts, d)
		}
	}
	sort.Strings(parts)
	return Closed{Round: c.id, BaseVersion: c.base, Started: c.started, Participants: parts, Selected: len(c.tasks), Sum: c.sum}, nil
}

// Finish ends the open round, whether it was released or given up.
func (e *Engine) Finish() { e.cur = nil }
