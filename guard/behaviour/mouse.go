package behaviour

import (
	"errors"
	"fmt"
	"math"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/mouse"
)

// ErrMouseLayout reports a model that does not score mouse actions (mouse.FeatureSet).
var ErrMouseLayout = errors.New("behaviour: model is not a mouse model")

// mouseScorer scores guard mouse windows with a user's mouse model: the window's events are cut
// into actions (mouse.AppendSegments), each action scored, and the window judged by the mean of
// the actions' combined scores, as the mouse evaluation judges a session. Its buffers are
// reused, so scoring allocates nothing once they have grown.
type mouseScorer struct {
	model   *models.UserModel
	events  []mouse.Event
	actions []mouse.Action
	ex      mouse.Extractor
	f       []float64
	w       models.Window
	devs    []guard.Deviation
}

func (m *mouseScorer) setModel(um *models.UserModel) error {
	if um != nil && um.Layout().Name != mouse.FeatureSet {
		return fmt.Errorf("%w: layout %q, want %q", ErrMouseLayout, um.Layout().Name, mouse.FeatureSet)
	}
	m.model = um
	return nil
}

// score returns the window's anomaly: the logistic of the actions' mean combined score less the
// user's threshold, at the single-action temperature narrowed by sqrt(actions), since a mean
// of k actions' scores is that much less noisy. A window without a usable action gives no
// opinion.
func (m *mouseScorer) score(window []guard.MouseEvent) (guard.BehaviourScore, error) {
	if m.model == nil || len(window) == 0 {
		return guard.BehaviourScore{}, guard.ErrNotScored
	}
	m.events = AppendMouseEvents(m.events[:0], window)
	var err error
	if m.actions, _, err = mouse.AppendSegments(m.actions[:0], m.events, mouse.SegmentConfig{}); err != nil {
		return guard.BehaviourScore{}, fmt.Errorf("behaviour: %w", err)
	}
	if cap(m.f) < mouse.NumFeatures {
		m.f = make([]float64, mouse.NumFeatures)
	}
	m.f = m.f[:mouse.NumFeatures]
	var sum, worst float64
	n := 0
	m.devs = m.devs[:0]
	for _, a := range m.actions {
		if err := m.ex.Extract(m.f, a); err != nil {
			continue // an action without distinct timed points says nothing
		}
		mouse.Window(&m.w, a.Type, m.f)
		s := m.model.Detail(m.w)
		if math.IsNaN(s.Combined) {
			return guard.BehaviourScore{}, fmt.Errorf("behaviour: the mouse model scored an action NaN")
		}
		sum += s.Combined
		if n == 0 || s.Combined > worst {
			// The most anomalous action explains the window.
			worst = s.Combined
			_, devs := m.model.Score(m.w)
			m.devs = m.devs[:0]
			for _, d := range devs {
				if finite(d.Z) && finite(d.Value) && finite(d.Baseline) && len(m.devs) < guard.MaxDeviations {
					m.devs = append(m.devs, guard.Deviation{Feature: d.Feature, Z: d.Z, Value: d.Value, Baseline: d.Baseline, Unit: d.Unit})
				}
			}
		}
		n++
	}
	if n == 0 {
		return guard.BehaviourScore{}, guard.ErrNotScored
	}
	t := m.model.Temperature() / math.Sqrt(float64(n))
	anomaly := 1 / (1 + math.Exp(-(sum/float64(n)-m.model.Threshold())/t))
	return guard.BehaviourScore{Anomaly: anomaly, Deviations: m.devs}, nil
}

// AppendMouseEvents appends guard mouse events to dst as the models' events, with times
// relative to the first event.
func AppendMouseEvents(dst []mouse.Event, evs []guard.MouseEvent) []mouse.Event {
	if len(evs) == 0 {
		return dst
	}
	origin := evs[0].At
	for _, ev := range evs {
		e := mouse.Event{T: ev.At.Sub(origin), X: float64(ev.X), Y: float64(ev.Y)}
		switch ev.Button {
		case guard.ButtonLeft:
			e.Button = mouse.Left
		case guard.ButtonRight:
			e.Button = mouse.Right
		case guard.ButtonMiddle:
			e.Button = mouse.Middle
		case guard.ButtonScroll:
			e.Button = mouse.Scroll
		case guard.ButtonOther:
			e.Button = mouse.XButton
		default:
			e.Button = mouse.NoButton
		}
		switch ev.Action {
		case guard.ActionPress:
			e.State = mouse.Pressed
		case guard.ActionRelease:
			e.State = mouse.Released
		case guard.ActionDrag:
			e.State = mouse.Drag
		case guard.ActionScrollDown:
			e.State = mouse.Down
		case guard.ActionScrollUp:
			e.State = mouse.Up
		default:
			e.State = mouse.Move
		}
		dst = append(dst, e)
	}
	return dst
}
