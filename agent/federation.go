package agent

import (
	"context"
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc"

	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/mouse"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Features returns the rows the device may train the federation's global autoencoder on: the
// summaries of every enrolled user's enrolment windows, normalised with that user's own
// normaliser as their personal model's autoencoder sees them (models.NormaliseSummaries), so
// that they are rows of the same kind as every other device's. It satisfies client.LocalData;
// the rows are copies, and nothing raw is among them.
func (a *Agent) Features() [][]float64 {
	a.mu.Lock()
	g := a.cfg.Global
	var per [][][]float64
	for _, us := range a.state.Users {
		if us.Enrolled {
			per = append(per, summaries(us.Enrolment))
		}
	}
	a.mu.Unlock()
	l, err := behaviour.KeystrokeLayout(g)
	if err != nil {
		return nil
	}
	var pop *models.Population
	if g != nil {
		pop = g.Population
	}
	var rows [][]float64
	for _, s := range per {
		_, norm, err := models.NormaliseSummaries(l, pop, s, models.UserModelConfig{})
		if err != nil {
			a.cfg.Logger.Warn("a user's summaries do not normalise; left out of training", "err", err)
			continue
		}
		rows = append(rows, norm...)
	}
	return rows
}

// Windows returns copies of every enrolled user's stored enrolment windows (feature summaries
// and per-bucket timings, no key sequence): what a population round's statistics are computed
// from (models.PopulationStats.Contribute). client.Agent asks for them when it has a population
// task.
func (a *Agent) Windows() []models.Window {
	return a.enrolmentWindows(func(us *UserState) []models.Window {
		if !us.Enrolled {
			return nil
		}
		return us.Enrolment.Windows
	})
}

// enrolmentWindows returns copies of the windows of every user that of returns.
func (a *Agent) enrolmentWindows(of func(*UserState) []models.Window) []models.Window {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []models.Window
	for _, us := range a.state.Users {
		for _, w := range of(us) {
			out = append(out, models.Window{Dense: slices.Clone(w.Dense), Events: slices.Clone(w.Events)})
		}
	}
	return out
}

// WindowsOf returns copies of the stored enrolment windows of featureSet: every enrolled user's
// typing windows (Windows), or every mouse-enrolled user's mouse windows (one per action:
// features, never positions). It satisfies client.FeatureWindows, for the population rounds of
// each feature set.
func (a *Agent) WindowsOf(featureSet string) []models.Window {
	switch featureSet {
	case keystroke.TimingFeatureSet:
		return a.Windows()
	case mouse.FeatureSet:
	default:
		return nil
	}
	return a.enrolmentWindows(func(us *UserState) []models.Window {
		if !us.MouseEnrolled {
			return nil
		}
		return us.MouseEnrolment.Windows
	})
}

// summaries returns the rows a user's autoencoder learns from, as models.FitUserModel takes
// them. The rows are shared with e.
func summaries(e models.Enrolment) [][]float64 {
	if len(e.Summaries) > 0 {
		return slices.Clone(e.Summaries)
	}
	rows := make([][]float64, len(e.Windows))
	for i, w := range e.Windows {
		rows[i] = w.Dense
	}
	return rows
}

// SetGlobal installs a new global model from the federation (a release the updater verified
// and promoted, or a population model) and refits every enrolled user's personal model on it
// from their stored enrolment, swapping each user's model as its refit completes: sessions keep
// being scored by the old model until then. A user whose refit fails keeps their model, and
// SetGlobal reports the first failure. Models fitted after it, and after a restart with
// Config.Global, use the new global.
func (a *Agent) SetGlobal(ctx context.Context, g *models.Global) error {
	if _, err := behaviour.KeystrokeLayout(g); err != nil {
		return err
	}
	a.mu.Lock()
	a.cfg.Global = g
	type job struct {
		user   string
		enrol  models.Enrolment
		seed   uint64
		learnt []models.Window
	}
	var jobs []job
	for user, us := range a.state.Users {
		if us.Enrolled {
			jobs = append(jobs, job{user, us.Enrolment, us.Seed, slices.Clone(us.Learnt)})
		}
	}
	a.mu.Unlock()
	var first error
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := a.fitOn(g, j.enrol, j.seed, j.learnt)
		if err == nil {
			err = a.scorers.SetModel(j.user, m)
		}
		if err != nil {
			a.cfg.Logger.Warn("refit on the new global model failed; keeping the user's model", "user", j.user, "err", err)
			if first == nil {
				first = fmt.Errorf("agent: refitting %q: %w", j.user, err)
			}
			continue
		}
		a.setNormaliser(j.user, g, j.enrol)
	}
	return first
}

// Idle reports whether the device has been idle for at least quiet: no session started, no
// events received and no session ended for that long. A session left open without input (a
// signed-in user away from the keyboard) does not keep the device busy.
func (a *Agent) Idle(quiet time.Duration) bool {
	return time.Since(time.Unix(0, a.active.Load())) >= quiet
}

// touch records activity on the local API: the device is not idle.
func (a *Agent) touch(now time.Time) { a.active.Store(now.UnixNano()) }

// WhenIdle returns c with GetTask held back until the device is idle for quiet (see Idle) and
// has enrolled users whose stored windows it can train on. client.Agent asks for a task only
// through GetTask, so a device whose user is typing is never handed a round: it takes part
// from its stored feature summaries only while nobody is using it. A task asked for while idle
// is carried out to the end even if a session starts meanwhile; its local training over the
// stored summaries takes well under a second.
func (a *Agent) WhenIdle(c vigilv1.CoordinatorClient, quiet time.Duration) vigilv1.CoordinatorClient {
	return &idleCoordinator{CoordinatorClient: c, a: a, quiet: quiet}
}

type idleCoordinator struct {
	vigilv1.CoordinatorClient
	a     *Agent
	quiet time.Duration
}

func (c *idleCoordinator) GetTask(ctx context.Context, req *vigilv1.GetTaskRequest, opts ...grpc.CallOption) (*vigilv1.GetTaskResponse, error) {
	if err := c.a.waitIdle(ctx, c.quiet); err != nil {
		return nil, err
	}
	return c.CoordinatorClient.GetTask(ctx, req, opts...)
}

// waitIdle waits until the device is idle for quiet and some user is enrolled.
func (a *Agent) waitIdle(ctx context.Context, quiet time.Duration) error {
	for {
		wait := quiet - time.Since(time.Unix(0, a.active.Load()))
		if wait <= 0 {
			if a.enrolledUsers() > 0 {
				return nil
			}
			wait = max(quiet, time.Second) // nobody to train on yet
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-a.done:
			t.Stop()
			return fmt.Errorf("agent: shutting down")
		case <-t.C:
		}
	}
}

// enrolledUsers counts the users with a fitted keystroke model.
func (a *Agent) enrolledUsers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, us := range a.state.Users {
		if us.Enrolled {
			n++
		}
	}
	return n
}
