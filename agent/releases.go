package agent

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
)

// Releases are the organisation's release streams the agent follows (see FollowReleases). Any
// updater may be nil: an organisation may publish only some of them.
type Releases struct {
	// Autoencoder follows the global autoencoder (model "keystroke-ae": params.f64, meta.json).
	// Its candidates are scored in shadow on the windows of sessions in good standing.
	Autoencoder *updater.Updater
	// Population follows the population model (model "keystroke-population", population.f64;
	// an updater with Config.Population set).
	Population *updater.Updater
	// MousePopulation follows the mouse population model ("mouse-population", population.f64
	// with the reference it was decoded against; an updater with Config.Population set to the
	// mouse layout), which users' mouse models are fitted on.
	MousePopulation *updater.Updater
	// Report, if set, is told of every event other than NoChange and every error of any
	// updater, and of every installation into the users' models (event Installed: model "" for
	// the typing models, the mouse population's name for the mouse models). Each updater calls
	// it from its own goroutine, so calls can come at once.
	Report func(model string, ev updater.Event, err error)
}

// GlobalOf is the global model users' models are fitted on from the running releases of the two
// streams (either may be nil): the autoencoder's architecture and parameters and the population
// model. It is nil when neither stream has a release installed.
func GlobalOf(ae, pop *updater.Model) *models.Global {
	if ae == nil && pop == nil {
		return nil
	}
	g := &models.Global{}
	if ae != nil {
		g.Spec, g.Params = ae.Spec, ae.Params
	}
	if pop != nil {
		g.Population = pop.Population
	}
	return g
}

func current(u *updater.Updater) *updater.Model {
	if u == nil {
		return nil
	}
	return u.Current()
}

func version(m *updater.Model) uint64 {
	if m == nil {
		return 0
	}
	return m.Version
}

// FollowReleases runs the updaters until ctx ends and installs every newly running release
// (installed, promoted, or rolled back to) with SetGlobal, combining the newest of each stream
// into one models.Global. Sessions stay open throughout: each user's model is swapped as its
// refit completes. The releases running when FollowReleases starts are taken to be installed
// already (give them to New as Config.Global, GlobalOf of the updaters' Current). It returns
// ctx's error.
func (a *Agent) FollowReleases(ctx context.Context, r Releases) error {
	report := func(model string, ev updater.Event, err error) {
		if r.Report != nil {
			r.Report(model, ev, err)
		}
	}
	changed := make(chan struct{}, 1)
	g, ctx := errgroup.WithContext(ctx)
	follow := func(u *updater.Updater, windows <-chan []float64) {
		model := u.Status().Model
		g.Go(func() error {
			return u.Run(ctx, windows, func(ev updater.Event, err error) {
				report(model, ev, err)
				if err == nil && (ev.Kind == updater.Installed || ev.Kind == updater.Promoted || ev.Kind == updater.RolledBack) {
					select {
					case changed <- struct{}{}:
					default: // an installation is already due; it reads the newest
					}
				}
			})
		})
	}
	if r.Autoencoder != nil {
		a.shadowing.Store(true)
		defer a.shadowing.Store(false)
		follow(r.Autoencoder, a.shadow)
	}
	if r.Population != nil {
		follow(r.Population, nil)
	}
	if r.MousePopulation != nil {
		follow(r.MousePopulation, nil)
	}
	g.Go(func() error {
		installedAE, installedPop := version(current(r.Autoencoder)), version(current(r.Population))
		installedMouse := version(current(r.MousePopulation))
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-changed:
			}
			ae, pop := current(r.Autoencoder), current(r.Population)
			if mp := current(r.MousePopulation); version(mp) != installedMouse {
				start := time.Now()
				var mg *models.Global
				if mp != nil {
					mg = &models.Global{Population: mp.Population}
				}
				err := a.SetMouseGlobal(ctx, mg)
				if ctx.Err() != nil {
					return ctx.Err()
				}
				installedMouse = version(mp)
				a.cfg.Logger.Info("mouse population installed", "version", installedMouse, "refit", time.Since(start).Round(time.Millisecond), "err", err)
				report(r.MousePopulation.Status().Model, updater.Event{Kind: updater.Installed, Version: installedMouse}, err)
			}
			if version(ae) == installedAE && version(pop) == installedPop {
				continue
			}
			start := time.Now()
			err := a.SetGlobal(ctx, GlobalOf(ae, pop))
			if ctx.Err() != nil {
				return ctx.Err()
			}
			installedAE, installedPop = version(ae), version(pop)
			a.cfg.Logger.Info("global model installed", "autoencoder", installedAE, "population", installedPop,
				"users", a.enrolledUsers(), "refit", time.Since(start).Round(time.Millisecond), "err", err)
			report("", updater.Event{Kind: updater.Installed, Version: installedAE}, err)
		}
	})
	return g.Wait()
}

// shadowWindow offers the updater a window of a session in good standing, normalised as its
// user's model sees it (rt), to score a candidate release in shadow. It never blocks: a window the updater
// has no time for is dropped.
func (a *Agent) shadowWindow(rt *userRT, w models.Window) {
	norm := rt.norm.Load()
	if norm == nil || len(w.Dense) == 0 {
		return
	}
	row := make([]float64, len(w.Dense))
	norm.Apply(row, w.Dense)
	select {
	case a.shadow <- row:
	default:
	}
}

// setNormaliser keeps the normaliser of user's model fitted on global g from enrol, for the
// windows offered in shadow.
func (a *Agent) setNormaliser(user string, g *models.Global, enrol models.Enrolment) {
	l, err := behaviour.KeystrokeLayout(g)
	if err != nil {
		return
	}
	var pop *models.Population
	if g != nil {
		pop = g.Population
	}
	n, _, err := models.NormaliseSummaries(l, pop, summaries(enrol), models.UserModelConfig{})
	if err != nil {
		return
	}
	a.mu.Lock()
	_, rt := a.userState(user)
	a.mu.Unlock()
	rt.norm.Store(&n)
}
