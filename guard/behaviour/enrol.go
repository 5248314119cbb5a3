package behaviour

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// ErrTooFewWindows reports enrolment typing without enough usable windows.
var ErrTooFewWindows = errors.New("behaviour: too little usable typing to enrol")

// EnrolConfig sets how enrolment typing is cut into what a user model learns from. The zero
// value gives the defaults, those of the keystroke protocol in models/eval.
type EnrolConfig struct {
	// Window is L, the keystrokes per window (default 50): the guard's KeystrokeWindow.
	Window int
	// Windows is G, the usable disjoint windows to enrol on (default 5).
	Windows int
	// Stride is the step between the overlapping windows whose summaries the autoencoder and
	// the isolation forest learn from (default Window/5).
	Stride int
}

func (c *EnrolConfig) validate() error {
	if c.Window == 0 {
		c.Window = 50
	}
	if c.Windows == 0 {
		c.Windows = 5
	}
	if c.Stride == 0 {
		c.Stride = max(c.Window/5, 1)
	}
	switch {
	case c.Window < 10 || c.Window > 10000:
		return fmt.Errorf("behaviour: enrolment window of %d keystrokes, want 10..10000", c.Window)
	case c.Windows < 1 || c.Windows > 1000:
		return fmt.Errorf("behaviour: %d enrolment windows, want 1..1000", c.Windows)
	case c.Stride < 1 || c.Stride > c.Window:
		return fmt.Errorf("behaviour: enrolment stride %d, want 1..%d", c.Stride, c.Window)
	}
	return nil
}

// EnrolStats says how much of the enrolment typing was used.
type EnrolStats struct {
	// Used is the number of keystrokes, from the start, that the enrolment covers: typing after
	// them was not learnt from.
	Used int
	// Sparse is the number of windows skipped for too few usable timings.
	Sparse int
}

// KeystrokeEnrolment cuts a user's typing (in time order) into consecutive windows of
// cfg.Window keystrokes, takes the first cfg.Windows usable ones as the enrolment's disjoint
// windows, and adds the summaries of overlapping windows every cfg.Stride keystrokes over the
// same span. This is how the keystroke protocol of models/eval enrols a participant.
func KeystrokeEnrolment(ks []keystroke.Keystroke, cfg EnrolConfig) (models.Enrolment, EnrolStats, error) {
	var st EnrolStats
	if err := cfg.validate(); err != nil {
		return models.Enrolment{}, st, err
	}
	var (
		e  models.Enrolment
		ex keystroke.TimingExtractor
		t  keystroke.Timings
	)
	for i, w := range keystroke.Windows(ks, cfg.Window) {
		if len(e.Windows) == cfg.Windows {
			break
		}
		if err := ex.Extract(&t, w); err != nil {
			if !errors.Is(err, keystroke.ErrWindowTooSparse) {
				return models.Enrolment{}, st, fmt.Errorf("behaviour: enrolment window %d: %w", i, err)
			}
			st.Sparse++
			continue
		}
		e.Windows = append(e.Windows, models.Window{Dense: slices.Clone(t.Summary), Events: slices.Clone(t.Events)})
		st.Used = (i + 1) * cfg.Window
	}
	if len(e.Windows) < cfg.Windows {
		return models.Enrolment{}, st, fmt.Errorf("%w: %d usable windows of %d keystrokes in %d keystrokes, want %d",
			ErrTooFewWindows, len(e.Windows), cfg.Window, len(ks), cfg.Windows)
	}
	for start := 0; start+cfg.Window <= st.Used; start += cfg.Stride {
		if ex.Extract(&t, ks[start:start+cfg.Window]) == nil {
			e.Summaries = append(e.Summaries, slices.Clone(t.Summary))
		}
	}
	return e, st, nil
}

// KeystrokeLayout returns the layout keystroke models of global are learnt on: the population
// model's, when the federation has one, so that profiles and population share one layout;
// otherwise a new keystroke.NewLayout. It rejects a population of another feature set.
func KeystrokeLayout(global *models.Global) (*models.Layout, error) {
	if global == nil || global.Population == nil {
		return keystroke.NewLayout(), nil
	}
	l := global.Population.Layout
	if l == nil || l.Name != keystroke.TimingFeatureSet {
		name := "none"
		if l != nil {
			name = l.Name
		}
		return nil, fmt.Errorf("%w: the federation's population model has layout %q", ErrLayout, name)
	}
	return l, nil
}

// FitKeystrokes learns a user's keystroke model from enrolment with the federation's
// population model and global autoencoder (global may be nil: the device learns alone), on
// layout l (nil: KeystrokeLayout(global); pass one layout to many fits to share it).
// A Scorer given the model centres the corrections of the windows it scores on the enrolment's
// own share of them (see modelEditShare).
func FitKeystrokes(ctx context.Context, l *models.Layout, global *models.Global, enrol models.Enrolment, cfg models.UserModelConfig) (*models.UserModel, error) {
	if l == nil {
		var err error
		if l, err = KeystrokeLayout(global); err != nil {
			return nil, err
		}
	}
	if l.Name != keystroke.TimingFeatureSet {
		return nil, fmt.Errorf("%w: layout %q", ErrLayout, l.Name)
	}
	m, err := models.FitUserModel(ctx, l, global, enrol, cfg)
	if err != nil {
		return nil, fmt.Errorf("behaviour: %w", err)
	}
	return m, nil
}
