package models

import (
	"context"
	"fmt"
	"math"
)

// Global is what the federation gives every device: the population background model and the
// global autoencoder, both learnt from devices' own data without it leaving them. A nil
// *Global means a device learns alone.
type Global struct {
	Population *Population
	// Spec and Params are the global autoencoder over normalised window summaries; Params may
	// be nil when the federation has not trained one.
	Spec   Spec
	Params []float64
}

// Enrolment is what a user model learns from: the user's own behaviour.
type Enrolment struct {
	// Windows are disjoint windows: every event counts once in the profile.
	Windows []Window
	// Summaries optionally holds the rows the autoencoder and the isolation forest learn from,
	// in the form of Window.Dense: for example summaries of overlapping windows over the same
	// keystrokes, which give them more rows to learn a shape from, or a sample of many
	// windows. When empty, the Windows' summaries are used.
	Summaries [][]float64
}

// Weights combine the detectors' standardised scores into one.
type Weights struct {
	Profile, Autoencoder, Forest float64
}

// UserModelConfig sets how a user model is learnt and how its detectors are combined. The zero
// value gives defaults tuned on development participants of the Aalto keystroke data (see
// models/eval).
type UserModelConfig struct {
	Profile ProfileConfig
	// Scaling normalises window summaries per user before the autoencoder and the forest
	// (default ZScore).
	Scaling Scaling
	// ScalePrior is the number of rows' worth of weight the population's spread gets against the
	// user's own when normalising (default 5; ignored without a population).
	ScalePrior float64
	// Hidden lists the autoencoder's hidden widths (default 16, 6, 16).
	Hidden []int
	// Train sets the autoencoder's training (defaults: 60 epochs, batch 16, rate 5e-3).
	Train TrainConfig
	// Forest sets the isolation forest (default 100 trees).
	Forest ForestConfig
	// Weights combines the detectors (default: the Layout's Weights).
	Weights Weights
	// Threshold places the user's decision threshold.
	Threshold ThresholdConfig
	// Keep is how much of the baseline survives each genuine window fed back (default 0.995).
	Keep float64
}

func (c *UserModelConfig) validate() error {
	if c.Scaling == "" {
		c.Scaling = ZScore
	}
	if c.Scaling != ZScore && c.Scaling != Robust {
		return fmt.Errorf("models: unknown scaling %q, want %q or %q", c.Scaling, ZScore, Robust)
	}
	if c.ScalePrior == 0 {
		c.ScalePrior = 5
	}
	if c.Hidden == nil {
		c.Hidden = []int{16, 6, 16}
	}
	if c.Train.Epochs == 0 {
		c.Train.Epochs = 60
	}
	if c.Train.BatchSize == 0 {
		c.Train.BatchSize = 16
	}
	if c.Train.LearningRate == 0 {
		c.Train.LearningRate = 5e-3
	}
	if c.Keep == 0 {
		c.Keep = 0.995
	}
	for _, w := range []float64{c.Weights.Profile, c.Weights.Autoencoder, c.Weights.Forest} {
		if !(w >= 0 && w < 1e6) {
			return fmt.Errorf("models: detector weight %v out of range [0, 1e6)", w)
		}
	}
	if !(c.ScalePrior > 0) || !(c.Keep > 0 && c.Keep <= 1) {
		return fmt.Errorf("models: scale prior %v or keep %v out of range", c.ScalePrior, c.Keep)
	}
	return c.Threshold.validate()
}

// Scores are one window's scores from each detector, their combination, and the calibrated
// anomaly derived from it.
type Scores struct {
	// Profile is the profile's log-likelihood ratio evidence; Autoencoder and Forest are
	// standardised against the user's own enrolment.
	Profile, Autoencoder, Forest float64
	// Combined is the weighted sum of the three; Anomaly maps it to [0, 1] around the user's
	// threshold (0.5 at the threshold).
	Combined, Anomaly float64
}

// UserModel is one user's behavioural model on the device: a personal profile judged against the
// population, an autoencoder and an isolation forest over the user's normalised window
// summaries, combined into one calibrated anomaly score with an explanation.
//
// Score allocates nothing once the model is built. A UserModel is not safe for concurrent use.
type UserModel struct {
	layout    *Layout
	cfg       UserModelConfig
	profile   *Profile
	norm      Normaliser
	ae        *Scorer
	forest    *IsolationForest
	aeCenter  float64 // median log reconstruction error of the enrolment rows
	forCenter float64 // median forest score of the enrolment rows
	threshold float64
	level     float64 // mean leave-one-out profile score of the enrolment windows
	enrolled  summaryMeans
	buf       []float64
	top       topDeviations
	devs      []Deviation
}

// FitUserModel learns a user's model from enrolment. global may be nil (no federation).
func FitUserModel(ctx context.Context, l *Layout, global *Global, enrol Enrolment, cfg UserModelConfig) (*UserModel, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	var pop *Population
	if global != nil {
		pop = global.Population
	}
	if len(enrol.Windows) == 0 {
		return nil, fmt.Errorf("%w: no enrolment windows", ErrBadData)
	}
	if cfg.Weights == (Weights{}) {
		cfg.Weights = l.Weights
		if pop != nil && pop.FromStats && l.WeightsStats != (Weights{}) {
			cfg.Weights = l.WeightsStats
		}
	}
	if !cfg.Threshold.Set {
		switch {
		case pop == nil:
			cfg.Threshold = l.ThresholdAlone
		case pop.FromStats && l.ThresholdStats.Set:
			cfg.Threshold = l.ThresholdStats
		default:
			cfg.Threshold = l.Threshold
		}
	}
	m := &UserModel{layout: l, cfg: cfg, enrolled: meanSummaries(enrol.Windows), buf: make([]float64, l.NumDense), devs: make([]Deviation, 0, MaxDeviations)}
	var err error
	if m.profile, err = FitProfile(l, pop, enrol.Windows, cfg.Profile); err != nil {
		return nil, err
	}
	genuine, err := crossValidate(l, pop, enrol.Windows, cfg.Profile)
	if err != nil {
		return nil, err
	}
	m.level = cfg.Threshold.level(genuine)
	m.threshold = cfg.Threshold.place(m.level)

	rows := enrol.Summaries
	if len(rows) == 0 {
		for _, w := range enrol.Windows {
			rows = append(rows, w.Dense)
		}
	}
	var norm [][]float64
	if m.norm, norm, err = NormaliseSummaries(l, pop, rows, cfg); err != nil {
		return nil, err
	}
	if err := m.fitAutoencoder(ctx, global, norm); err != nil {
		return nil, err
	}
	if len(norm) >= 2 {
		fc := cfg.Forest
		if m.forest, err = FitIsolationForest(norm, fc); err != nil {
			return nil, err
		}
		scores := make([]float64, len(norm))
		for i, r := range norm {
			scores[i] = m.forest.Score(r)
		}
		m.forCenter = median(scores)
	}
	return m, nil
}

// Layout returns the layout the model scores windows of.
func (m *UserModel) Layout() *Layout { return m.layout }

// Threshold returns the user's decision threshold on Scores.Combined.
func (m *UserModel) Threshold() float64 { return m.threshold }

// Temperature returns the width of the anomaly's rise around the threshold for one window (see
// ThresholdConfig): the mean of k windows' combined scores is k times less noisy, so a caller
// judging it uses Temperature()/sqrt(k).
func (m *UserModel) Temperature() float64 { return m.cfg.Threshold.Temperature }

// EnrolmentSummary returns the mean of summary feature i (an index into Window.Dense) over
// the enrolment windows where it is finite, and how many windows that is (0: none, or no such
// feature). A scorer uses it to judge a window against the user's own habits, such as their
// share of corrections, rather than everyone's.
func (m *UserModel) EnrolmentSummary(i int) (mean float64, windows int) {
	if i < 0 || i >= len(m.enrolled.mean) {
		return 0, 0
	}
	return m.enrolled.mean[i], m.enrolled.n[i]
}

// summaryMeans is each summary feature's mean over a set of windows, counting finite values.
type summaryMeans struct {
	mean []float64
	n    []int
}

func meanSummaries(windows []Window) summaryMeans {
	var s summaryMeans
	for _, w := range windows {
		if len(w.Dense) > len(s.mean) {
			s.mean = append(s.mean, make([]float64, len(w.Dense)-len(s.mean))...)
			s.n = append(s.n, make([]int, len(w.Dense)-len(s.n))...)
		}
		for i, v := range w.Dense {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				s.mean[i] += v
				s.n[i]++
			}
		}
	}
	for i, n := range s.n {
		if n > 0 {
			s.mean[i] /= float64(n)
		}
	}
	return s
}

// EnrolmentLevel returns the mean profile score of the user's enrolment windows, each scored
// against a profile learnt from the other windows (or folds), from which the threshold is placed (see
// ThresholdConfig).
func (m *UserModel) EnrolmentLevel() float64 { return m.level }
