package behaviour

import (
	"errors"
	"fmt"
	"math"
	"sync"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// ErrLayout reports a model that does not score keystroke timings (keystroke.TimingFeatureSet).
var ErrLayout = errors.New("behaviour: model is not a keystroke timing model")

// Scorer is one user's guard.BehaviourScorer on top of the user's keystroke model. Until it has
// a model (NewScorer(nil), or a Source's user not yet enrolled) it gives no opinion. It is safe
// for concurrent use; the guard calls it for one user at a time anyway.
type Scorer struct {
	mu     sync.Mutex
	model  *models.UserModel
	share  float64 // the share of corrections the model's windows are centred on (editCalibrated)
	ex     keystroke.TimingExtractor
	t      keystroke.Timings
	keys   []keystroke.Keystroke
	devs   []guard.Deviation
	recent recent
	stats  Stats
	mouse  mouseScorer
}

var _ guard.BehaviourScorer = (*Scorer)(nil)

// Stats counts what a Scorer has done.
type Stats struct {
	// Scored is the number of windows scored; Sparse the windows without enough usable timings
	// to score (no opinion given); Unenrolled the windows seen before the scorer had a model.
	Scored, Sparse, Unenrolled int
	// MouseScored is the number of mouse windows scored; MouseUnscored those without a mouse
	// model or without a usable action.
	MouseScored, MouseUnscored int
	// Learnt is the number of windows the model learnt from on feedback, and Feedbacks the
	// number of genuine verdicts (challenges passed, analysts' confirmations) that taught it.
	Learnt, Feedbacks int
}

// NewScorer returns a scorer for the user whose keystroke model is m; m may be nil (not yet
// enrolled). The scorer owns m from then on: the model is not safe for concurrent use.
func NewScorer(m *models.UserModel) (*Scorer, error) {
	s := &Scorer{}
	if err := s.SetModel(m); err != nil {
		return nil, err
	}
	return s, nil
}

// SetModel replaces the user's model, for example after a refit from recent genuine windows or
// a new federated release; nil removes it. Windows kept for feedback stay: they are features,
// not scores, and every keystroke model reads the same features.
func (s *Scorer) SetModel(m *models.UserModel) error {
	if m != nil && m.Layout().Name != keystroke.TimingFeatureSet {
		return fmt.Errorf("%w: layout %q, want %q", ErrLayout, m.Layout().Name, keystroke.TimingFeatureSet)
	}
	share := modelEditShare(m)
	s.mu.Lock()
	s.model, s.share = m, share
	s.mu.Unlock()
	return nil
}

// Stats returns what the scorer has done so far.
func (s *Scorer) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// ScoreKeystrokes implements guard.BehaviourScorer: it extracts the window's timings, scores
// them with the user's model, recalibrates the anomaly by the window's corrections against the
// user's own share of them (see editEvidence and modelEditShare) and explains the score
// with the model's deviations. A window too sparse to describe (mostly pauses or keys without
// timings) gets guard.ErrNotScored.
func (s *Scorer) ScoreKeystrokes(window []guard.KeystrokeEvent) (guard.BehaviourScore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.model == nil {
		s.stats.Unenrolled++
		return guard.BehaviourScore{}, guard.ErrNotScored
	}
	if len(window) == 0 {
		return guard.BehaviourScore{}, guard.ErrNotScored
	}
	s.keys = AppendKeystrokes(s.keys[:0], window)
	if err := s.ex.Extract(&s.t, s.keys); err != nil {
		if errors.Is(err, keystroke.ErrWindowTooSparse) {
			s.stats.Sparse++
			return guard.BehaviourScore{}, guard.ErrNotScored
		}
		return guard.BehaviourScore{}, fmt.Errorf("behaviour: %w", err)
	}
	w := s.t.Window()
	anomaly, devs := s.model.Score(w)
	if math.IsNaN(anomaly) {
		return guard.BehaviourScore{}, fmt.Errorf("behaviour: the model scored a window NaN")
	}
	anomaly = editCalibrated(anomaly, window, s.share)
	s.stats.Scored++
	s.recent.add(window[0].Session, window[0].Press, window[len(window)-1].Press, w)
	s.devs = s.devs[:0]
	for _, d := range devs {
		if finite(d.Z) && finite(d.Value) && finite(d.Baseline) && len(s.devs) < guard.MaxDeviations {
			s.devs = append(s.devs, guard.Deviation{Feature: d.Feature, Z: d.Z, Value: d.Value, Baseline: d.Baseline, Unit: d.Unit})
		}
	}
	return guard.BehaviourScore{Anomaly: anomaly, Deviations: s.devs}, nil
}

// SetMouseModel gives the scorer the user's mouse model (layout mouse.FeatureSet); nil removes
// it, and mouse windows get no opinion.
func (s *Scorer) SetMouseModel(m *models.UserModel) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mouse.setModel(m)
}

// ScoreMouse implements guard.BehaviourScorer: it cuts the window into mouse actions, scores
// each with the user's mouse model and judges the window by their mean (see mouseScorer). Without
// a mouse model, or without a usable action in the window, it gives no opinion.
func (s *Scorer) ScoreMouse(window []guard.MouseEvent) (guard.BehaviourScore, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	score, err := s.mouse.score(window)
	switch {
	case err == nil:
		s.stats.MouseScored++
	case errors.Is(err, guard.ErrNotScored):
		s.stats.MouseUnscored++
	}
	return score, err
}

// Feedback implements guard.BehaviourScorer. A genuine verdict (a passed challenge, an
// analyst's confirmation) teaches the model the session's windows it scored between f.From and
// f.To, disjoint ones only, so that no keystroke counts twice; a compromised verdict makes sure
// none of them is ever learnt.
func (s *Scorer) Feedback(f guard.Feedback) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch f.Verdict {
	case guard.VerdictGenuine, guard.VerdictChallengePassed:
		if s.model == nil {
			return
		}
		n := s.recent.learn(f.Session, f.From, f.To, func(w models.Window) bool {
			return s.model.Feedback(w, true) == nil
		})
		s.stats.Learnt += n
		if n > 0 {
			s.stats.Feedbacks++
		}
	case guard.VerdictCompromised:
		s.recent.forget(f.Session, f.To)
	}
}

// AppendKeystrokes appends guard keystroke events to dst as the models' keystrokes, with times
// relative to the first event's press. A release equal to the press (unknown) stays unknown.
func AppendKeystrokes(dst []keystroke.Keystroke, evs []guard.KeystrokeEvent) []keystroke.Keystroke {
	if len(evs) == 0 {
		return dst
	}
	origin := evs[0].Press
	for _, ev := range evs {
		k := keystroke.Keystroke{Code: int(ev.Key), Press: ev.Press.Sub(origin)}
		if ev.Release.After(ev.Press) {
			k.Release = ev.Release.Sub(origin)
		}
		dst = append(dst, k)
	}
	return dst
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
