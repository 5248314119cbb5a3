package agent

import (
	"context"
	"fmt"
	"slices"

	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
)

// Features returns the feature summaries the agent stores, one row per enrolment window summary
// of every enrolled user: what the device may train the federation's global model on. It
// satisfies client.LocalData, so a federated client can take part in rounds from the agent's
// data; the rows are copies, and nothing raw is among them.
func (a *Agent) Features() [][]float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var rows [][]float64
	for _, us := range a.state.Users {
		if !us.Enrolled {
			continue
		}
		for _, s := range us.Enrolment.Summaries {
			rows = append(rows, slices.Clone(s))
		}
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
		}
	}
	return first
}
