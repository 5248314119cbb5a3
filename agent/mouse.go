package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/mouse"
)

// mouseLayout is the layout of every mouse model, built once.
var mouseLayout = sync.OnceValue(mouse.NewLayout)

// mouseBatch is how many pointer events the mouse enroller gathers before cutting them into
// actions: enough that most actions in it are complete.
const mouseBatch = 200

// mouseEnroller cuts a session's pointer events into mouse actions and adds each completed
// action's features to its user's mouse enrolment, as the mouse evaluation enrols a user (one
// models.Window per action: mouse.Window of the action's features). It keeps raw events in memory
// only until the actions they belong to are complete; what it accumulates are feature summaries.
type mouseEnroller struct {
	buf     []guard.MouseEvent
	fresh   int // events added since the buffer was last cut
	evs     []mouse.Event
	actions []mouse.Action
	ex      mouse.Extractor
	f       []float64
}

// push adds a session's events, in time order, and returns the windows of the actions they
// complete. The last action cut from the events may go on with the next events: it waits. The
// events are cut every mouseBatch events, so most batches cost only their copy.
func (m *mouseEnroller) push(evs []guard.MouseEvent) []models.Window {
	m.buf = append(m.buf, evs...)
	m.fresh += len(evs)
	if m.fresh < mouseBatch {
		return nil
	}
	m.fresh = 0
	m.evs = behaviour.AppendMouseEvents(m.evs[:0], m.buf)
	var err error
	if m.actions, _, err = mouse.AppendSegments(m.actions[:0], m.evs, mouse.SegmentConfig{}); err != nil || len(m.actions) < 2 {
		if len(m.buf) > 2*mouseBatch {
			// No action ends (a long drag, a pointer that never pauses): keep the recent half,
			// so that cutting the buffer stays cheap.
			m.buf = slices.Delete(m.buf, 0, len(m.buf)/2)
		}
		return nil
	}
	var out []models.Window
	if len(m.f) != mouse.NumFeatures {
		m.f = make([]float64, mouse.NumFeatures)
	}
	done := m.actions[:len(m.actions)-1]
	for _, a := range done {
		if m.ex.Extract(m.f, a) != nil {
			continue // too few distinct timed points to describe
		}
		var w models.Window
		mouse.Window(&w, a.Type, m.f)
		out = append(out, w)
	}
	// Keep the events from the start of the last action on.
	from := m.buf[0].At.Add(m.actions[len(m.actions)-1].Points[0].T)
	i := sort.Search(len(m.buf), func(i int) bool { return !m.buf[i].At.Before(from) })
	m.buf = slices.Delete(m.buf, 0, i)
	return out
}

// reset forgets the raw events kept.
func (m *mouseEnroller) reset() { m.buf, m.fresh = m.buf[:0], 0 }

// fitMouse fits a user's mouse model on their mouse enrolment, judged against the federation's
// mouse population g (nil: the device learns alone).
func (a *Agent) fitMouse(g *models.Global, e models.Enrolment, seed uint64) (*models.UserModel, error) {
	return a.inBackground(func() (*models.UserModel, error) {
		return models.FitUserModel(context.Background(), mouseLayout(), g, e, models.UserModelConfig{Train: models.TrainConfig{Seed: seed}})
	})
}

// SetMouseGlobal installs the federation's mouse population (g.Population, of the mouse
// layout) and refits every mouse-enrolled user's mouse model on it from their stored mouse
// enrolment, swapping each model as its refit completes. A user whose refit fails keeps their
// model, and SetMouseGlobal reports the first failure.
func (a *Agent) SetMouseGlobal(ctx context.Context, g *models.Global) error {
	if g != nil && (g.Population == nil || g.Population.Layout.Name != mouse.FeatureSet || len(g.Params) != 0) {
		return fmt.Errorf("agent: a mouse model's global holds a population of %s and nothing else", mouse.FeatureSet)
	}
	a.mu.Lock()
	a.cfg.MouseGlobal = g
	type job struct {
		user  string
		enrol models.Enrolment
	}
	var jobs []job
	for user, us := range a.state.Users {
		if us.MouseEnrolled {
			jobs = append(jobs, job{user, us.MouseEnrolment})
		}
	}
	a.mu.Unlock()
	var first error
	for _, j := range jobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := a.fitMouse(g, j.enrol, userSeed(j.user))
		if err == nil {
			err = a.scorers.SetMouseModel(j.user, m)
		}
		if err != nil {
			a.cfg.Logger.Warn("refit on the new mouse population failed; keeping the user's mouse model", "user", j.user, "err", err)
			if first == nil {
				first = fmt.Errorf("agent: refitting %q's mouse model: %w", j.user, err)
			}
		}
	}
	return first
}

// enrolMouse feeds pointer events of session s, in good standing, to its user's mouse
// enrolment, and fits the user's mouse model once it has Config.MouseEnrolActions actions.
// s.mu must be held; the events are cut into actions before a.mu is taken.
func (a *Agent) enrolMouse(s *session, evs []guard.MouseEvent) {
	if s.mouse == nil {
		s.mouse = &mouseEnroller{}
	}
	ws := s.mouse.push(evs)
	if len(ws) == 0 {
		return
	}
	user := s.user
	a.mu.Lock()
	defer a.mu.Unlock()
	us, rt := a.userState(user)
	if us.MouseEnrolled || rt.fittingMouse {
		return
	}
	for _, w := range ws {
		// Each action at a random place: in the order made, the actions' start-to-end moves
		// add up to where the user clicked, an on-screen PIN pad's digits among them.
		i := rand.IntN(len(us.MouseEnrolment.Windows) + 1)
		us.MouseEnrolment.Windows = slices.Insert(us.MouseEnrolment.Windows, i, w)
	}
	a.dirty = true
	if len(us.MouseEnrolment.Windows) < a.cfg.MouseEnrolActions {
		return
	}
	us.MouseEnrolment.Windows = us.MouseEnrolment.Windows[:a.cfg.MouseEnrolActions]
	rt.fittingMouse = true
	s.mouse.reset()
	enrol := models.Enrolment{Windows: slices.Clone(us.MouseEnrolment.Windows)}
	a.fitting.Add(1)
	go func() {
		defer a.fitting.Done()
		start := time.Now()
		a.mu.Lock()
		g := a.cfg.MouseGlobal
		a.mu.Unlock()
		m, err := a.fitMouse(g, enrol, userSeed(user))
		if err == nil {
			err = a.scorers.SetMouseModel(user, m)
		}
		a.mu.Lock()
		rt.fittingMouse = false
		if err != nil {
			us.MouseEnrolment = models.Enrolment{}
			rt.publish(us)
			a.mu.Unlock()
			a.cfg.Logger.Warn("mouse enrolment failed; collecting more pointer movement", "user", user, "err", err)
			return
		}
		us.MouseEnrolled = true
		rt.publish(us)
		a.mu.Unlock()
		a.cfg.Logger.Info("user's mouse enrolled", "user", user, "actions", len(enrol.Windows), "fit", time.Since(start).Round(time.Millisecond))
		if err := a.Save(); err != nil {
			a.cfg.Logger.Error("saving state", "err", err)
		}
	}()
}

// MouseEnrolled reports whether user has a fitted mouse model.
func (a *Agent) MouseEnrolled(user string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	us := a.state.Users[user]
	return us != nil && us.MouseEnrolled
}
