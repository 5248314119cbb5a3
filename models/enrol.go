package models

import (
	"context"
	"fmt"
	"math"
	"slices"
)

// aeFloor keeps the log of a perfect reconstruction finite.
const aeFloor = 1e-4

// maxFolds bounds the cross-validation of enrolment: up to this many windows each is left out
// in turn, beyond it the windows are cut into this many contiguous folds (contiguous, because
// neighbouring windows in time resemble each other more than new behaviour will).
const maxFolds = 10

// NormaliseSummaries fits the user's Normaliser to their window summaries (Window.Dense) as
// FitUserModel does, and returns it with the normalised rows: the rows a device trains the
// autoencoder on, personally or in a federated round. pop may be nil.
func NormaliseSummaries(l *Layout, pop *Population, rows [][]float64, cfg UserModelConfig) (Normaliser, [][]float64, error) {
	if err := cfg.validate(); err != nil {
		return Normaliser{}, nil, err
	}
	var prior []float64
	if pop != nil {
		prior = make([]float64, l.NumDense)
		for d := range prior {
			if b := l.DenseBase + d; pop.usable(b) {
				prior[d] = math.Sqrt(pop.Within[b])
			}
		}
	}
	for i, r := range rows {
		if len(r) != l.NumDense {
			return Normaliser{}, nil, fmt.Errorf("%w: summary %d has %d entries, layout %s has %d", ErrBadData, i, len(r), l.Name, l.NumDense)
		}
	}
	n, err := FitNormaliser(cfg.Scaling, rows, prior, cfg.ScalePrior)
	if err != nil {
		return Normaliser{}, nil, err
	}
	out := make([][]float64, len(rows))
	for i, r := range rows {
		out[i] = make([]float64, len(r))
		n.Apply(out[i], r)
	}
	return n, out, nil
}

// AutoencoderSpec is the autoencoder a user model of layout l with cfg trains.
func AutoencoderSpec(l *Layout, cfg UserModelConfig) (Spec, error) {
	if err := cfg.validate(); err != nil {
		return Spec{}, err
	}
	spec := Spec{Layers: append(append([]int{l.NumDense}, cfg.Hidden...), l.NumDense), Activation: Tanh}
	return spec, spec.Validate()
}

// fitAutoencoder trains the personal autoencoder on the normalised rows, starting from the
// global autoencoder when the federation has one.
func (m *UserModel) fitAutoencoder(ctx context.Context, global *Global, rows [][]float64) error {
	spec, err := AutoencoderSpec(m.layout, m.cfg)
	if err != nil {
		return err
	}
	var init []float64
	if global != nil && global.Params != nil {
		if err := global.Spec.Validate(); err != nil {
			return err
		}
		if !slices.Equal(global.Spec.Layers, spec.Layers) {
			return fmt.Errorf("%w: global autoencoder %v, user model wants %v", ErrBadSpec, global.Spec.Layers, spec.Layers)
		}
		spec, init = global.Spec, global.Params
	} else {
		if init, err = spec.InitParams(m.cfg.Train.Seed); err != nil {
			return err
		}
	}
	res, err := Train(ctx, spec, init, rows, m.cfg.Train)
	if err != nil {
		return fmt.Errorf("models: personal autoencoder: %w", err)
	}
	if m.ae, err = NewScorer(spec, res.Params); err != nil {
		return err
	}
	errs := make([]float64, len(rows))
	for i, r := range rows {
		errs[i] = m.aeLogError(r)
	}
	m.aeCenter = median(errs)
	return nil
}

// aeLogError is the autoencoder's evidence on a normalised row: the log reconstruction error.
// (Judging it relative to the global autoencoder's error, as the profile is judged against the
// population, was tried and fails: on per-user normalised rows an impostor's window is as hard
// for the global autoencoder as for the personal one, and the ratio cancels the evidence.)
func (m *UserModel) aeLogError(x []float64) float64 {
	return math.Log(m.ae.Score(x) + aeFloor)
}

// crossValidate scores each enrolment window against a profile learnt from the other folds:
// what genuine scores look like for this user without the optimism of scoring training data.
func crossValidate(l *Layout, pop *Population, windows []Window, cfg ProfileConfig) ([]float64, error) {
	if len(windows) < 2 {
		return nil, nil
	}
	folds := min(len(windows), maxFolds)
	out := make([]float64, len(windows))
	rest := make([]Window, 0, len(windows))
	for f := 0; f < folds; f++ {
		lo, hi := f*len(windows)/folds, (f+1)*len(windows)/folds
		rest = append(append(rest[:0], windows[:lo]...), windows[hi:]...)
		p, err := FitProfile(l, pop, rest, cfg)
		if err != nil {
			return nil, err
		}
		for i := lo; i < hi; i++ {
			out[i] = p.Score(windows[i])
		}
	}
	return out, nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return quantile(s, 0.5)
}

// WithDefaults returns c with every unset field at its default, or an error naming the setting
// out of range.
func (c UserModelConfig) WithDefaults() (UserModelConfig, error) {
	err := c.validate()
	return c, err
}
