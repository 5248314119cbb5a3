package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/metrics"
)

// Modes of an evaluation: with the federation's models, and each device alone.
const (
	modeFederated = iota
	modeAlone
	numModes
)

// Detectors whose scores are kept per trial.
const (
	detProfile = iota
	detAutoencoder
	detForest
	detCombined
	numDetectors
)

var detectorNames = [numDetectors]string{"profile", "autoencoder", "forest", "combined"}

// userTrials are one user model's scores, per mode and detector, of its genuine and impostor
// trials, and its decisions at its own threshold.
type userTrials struct {
	genuine, impostor int
	gen, imp          [numModes][numDetectors][]float64
	falseRejects      [numModes]int
	falseAccepts      [numModes]int
	level             [numModes]float64 // the model's enrolment level
}

func (t *userTrials) add(mode int, s models.Scores, impostor bool) {
	v := [numDetectors]float64{s.Profile, s.Autoencoder, s.Forest, s.Combined}
	for d := range v {
		if impostor {
			t.imp[mode][d] = append(t.imp[mode][d], v[d])
		} else {
			t.gen[mode][d] = append(t.gen[mode][d], v[d])
		}
	}
	switch {
	case impostor && s.Anomaly < 0.5:
		t.falseAccepts[mode]++
	case !impostor && s.Anomaly >= 0.5:
		t.falseRejects[mode]++
	}
}

// scoreUsers fits each user's models, federated and alone, and scores the user's genuine trials
// and every other user's test windows.
func scoreUsers(ctx context.Context, layout *models.Layout, global *models.Global, users []keyUser, cfg KeystrokeConfig) ([]userTrials, error) {
	out := make([]userTrials, len(users))
	err := forEach(ctx, len(users), cfg.Workers, cfg.progress("evaluate"), func(i int) error {
		u := users[i]
		enrol := models.Enrolment{Windows: u.enrol, Summaries: u.overlap}
		mc := cfg.Model
		mc.Train.Seed = cfg.Seed + uint64(i)
		mc.Forest.Seed = cfg.Seed + uint64(i)
		t := &out[i]
		for mode, g := range [numModes]*models.Global{modeFederated: global, modeAlone: nil} {
			if mode == modeAlone && cfg.SkipAlone {
				continue
			}
			m, err := models.FitUserModel(ctx, layout, g, enrol, mc)
			if err != nil {
				return fmt.Errorf("eval: participant %s: %w", u.id, err)
			}
			t.level[mode] = m.EnrolmentLevel()
			for _, w := range u.test {
				t.add(mode, m.Detail(w), false)
			}
			for j, v := range users {
				if j == i {
					continue
				}
				for _, w := range v.test {
					t.add(mode, m.Detail(w), true)
				}
			}
		}
		t.genuine = len(t.gen[modeFederated][detCombined])
		t.impostor = len(t.imp[modeFederated][detCombined])
		return nil
	})
	return out, err
}

// Rates are the equal error rates of one detector: the mean over users of each user's own EER,
// and the EER of all users' trials pooled under one threshold.
type Rates struct {
	EERMean   float64 `json:"eer_mean"`
	EERPooled float64 `json:"eer_pooled"`
}

// Outcome is the result of one mode of an evaluation.
type Outcome struct {
	// Rates of the combined score.
	Rates
	// Detectors holds the rates of each detector on its own and combined.
	Detectors map[string]Rates `json:"detectors"`
	// FAR and FRR are the shares of impostor trials accepted and genuine trials rejected at the
	// users' own thresholds (anomaly 0.5).
	FAR float64 `json:"far_at_user_threshold"`
	FRR float64 `json:"frr_at_user_threshold"`
	// EERMeanCI and EERPooledCI are bootstrap 95% intervals of the combined score's rates over
	// users.
	EERMeanCI   Interval `json:"eer_mean_ci95"`
	EERPooledCI Interval `json:"eer_pooled_ci95"`
	// UserEER lists each user's EER of the combined score.
	UserEER []float64 `json:"user_eer,omitempty"`
	// Curve is the pooled ROC of the combined score.
	Curve metrics.Curve `json:"-"`
	// Fitted is the threshold placement fitted to this run's trials (how the defaults were set
	// on development participants), and FittedEER the pooled EER of the scores it shifts.
	Fitted    models.ThresholdConfig `json:"-"`
	FittedEER float64                `json:"-"`
}

func summarise(trials []userTrials, mode int) (Outcome, error) {
	o := Outcome{Detectors: map[string]Rates{}}
	var fa, fr, ni, ng int
	for d := 0; d < numDetectors; d++ {
		var gen, imp []float64
		var sum float64
		for _, t := range trials {
			e, err := metrics.EER(t.gen[mode][d], t.imp[mode][d])
			if err != nil {
				return o, err
			}
			sum += e
			gen = append(gen, t.gen[mode][d]...)
			imp = append(imp, t.imp[mode][d]...)
			if d == detCombined {
				o.UserEER = append(o.UserEER, e)
			}
		}
		c, err := metrics.ROC(gen, imp)
		if err != nil {
			return o, err
		}
		r := Rates{EERMean: sum / float64(len(trials)), EERPooled: c.EER()}
		o.Detectors[detectorNames[d]] = r
		if d == detCombined {
			o.Rates, o.Curve = r, c
		}
	}
	for _, t := range trials {
		fa += t.falseAccepts[mode]
		fr += t.falseRejects[mode]
		ni += t.impostor
		ng += t.genuine
	}
	o.FAR, o.FRR = float64(fa)/math.Max(float64(ni), 1), float64(fr)/math.Max(float64(ng), 1)
	o.EERMeanCI, o.EERPooledCI = bootstrapRates(trials, o.UserEER, mode, uint64(len(trials)))
	var err error
	o.Fitted, o.FittedEER, err = calibrateThreshold(trials, mode)
	return o, err
}
