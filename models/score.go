package models

import (
	"fmt"
	"math"
)

// ThresholdConfig places a user's decision threshold on the combined score and sets how sharply
// the anomaly rises around it. Scores of different feature sets live on different scales, so
// the defaults come with the Layout (fitted on development data, see models/eval).
type ThresholdConfig struct {
	// Offset is the threshold of a user whose enrolment scores like the typical user's.
	Offset float64
	// Slope is how far a user's threshold follows their own leave-one-out enrolment scores away
	// from the typical user's, in [0, 1]: 0 gives everybody the same threshold, 1 moves it by the
	// full difference.
	Slope float64
	// Typical is the typical user's mean leave-one-out profile score.
	Typical float64
	// Temperature is the width of the anomaly's rise: Anomaly = 1/(1+exp(-(Combined-threshold)
	// / Temperature)).
	Temperature float64
	// Set marks the values above as given; when false, the Layout's defaults are used.
	Set bool
}

func (c *ThresholdConfig) validate() error {
	if !c.Set {
		return nil
	}
	if !(c.Slope >= 0 && c.Slope <= 1) || !(c.Temperature > 0) || math.IsNaN(c.Offset) || math.IsNaN(c.Typical) {
		return fmt.Errorf("models: threshold settings out of range: %+v", *c)
	}
	return nil
}

// level is the mean of a user's leave-one-out genuine scores, or Typical when there are none
// (enrolment of a single window).
func (c ThresholdConfig) level(genuine []float64) float64 {
	if len(genuine) == 0 {
		return c.Typical
	}
	var g float64
	for _, v := range genuine {
		g += v / float64(len(genuine))
	}
	return g
}

// place returns the threshold of a user whose enrolment level is g.
func (c ThresholdConfig) place(g float64) float64 {
	return c.Offset + c.Slope*(g-c.Typical)
}

// Detail scores w with every detector. w must fit the model's layout (see Check).
func (m *UserModel) Detail(w Window) Scores {
	return m.detail(w, nil)
}

func (m *UserModel) detail(w Window, top *topDeviations) Scores {
	var s Scores
	s.Profile = m.profile.score(w, top)
	if len(w.Dense) == len(m.buf) {
		m.norm.Apply(m.buf, w.Dense)
		if m.ae != nil {
			s.Autoencoder = m.aeLogError(m.buf) - m.aeCenter
		}
		if m.forest != nil {
			s.Forest = (m.forest.Score(m.buf) - m.forCenter) * forestScale
		}
	}
	wt := m.cfg.Weights
	s.Combined = wt.Profile*s.Profile + wt.Autoencoder*s.Autoencoder + wt.Forest*s.Forest
	s.Anomaly = 1 / (1 + math.Exp(-(s.Combined-m.threshold)/m.cfg.Threshold.Temperature))
	return s
}

// forestScale brings isolation forest scores, which move in hundredths, to the order of the
// other detectors' scores.
const forestScale = 10

// Score returns the calibrated anomaly of window w in [0, 1] (above 0.5: beyond the user's
// threshold) and the features that deviated most from the user's baseline, strongest first.
// The deviations slice is reused by the next call. w must fit the model's layout (see Check);
// Score allocates nothing.
func (m *UserModel) Score(w Window) (anomaly float64, deviations []Deviation) {
	m.top.reset(m.layout)
	s := m.detail(w, &m.top)
	m.devs = m.top.appendTo(m.devs)
	return s.Anomaly, m.devs
}

// Check reports whether w fits the model's layout, for callers that take windows from outside.
func (m *UserModel) Check(w Window) error { return m.layout.checkWindow(w) }

// Feedback tells the model whether a window was the user's, once that is known (for example
// after the user passed a step-up challenge). A genuine window moves the profile's baseline
// towards it, forgetting a little of the past (UserModelConfig.Keep), so the model follows slow
// drift in the user's behaviour; an impostor's window is not learnt from. The autoencoder and
// forest are not updated online: refit them with FitUserModel from recent genuine windows.
func (m *UserModel) Feedback(w Window, genuine bool) error {
	if err := m.layout.checkWindow(w); err != nil {
		return err
	}
	if !genuine {
		return nil
	}
	return m.profile.Observe(w, m.cfg.Keep)
}
