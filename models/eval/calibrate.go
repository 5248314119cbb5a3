package eval

import (
	"math"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/metrics"
)

// calibrateThreshold fits the threshold placement to an evaluation's trials: Typical is the mean
// enrolment level; Slope (from a grid) and Offset make the pooled, user-shifted scores cross
// FAR = FRR at anomaly 0.5; Temperature is fitted by class-balanced logistic regression. It is
// how models.DefaultThreshold was set, from development participants only.
func calibrateThreshold(trials []userTrials, mode int) (models.ThresholdConfig, float64, error) {
	us := make([]levelScores, len(trials))
	for i, t := range trials {
		us[i] = levelScores{t.level[mode], t.gen[mode][detCombined], t.imp[mode][detCombined]}
	}
	return fitThreshold(us)
}

// levelScores are one user model's enrolment level and its genuine and impostor combined scores.
type levelScores struct {
	level    float64
	gen, imp []float64
}

// fitThreshold fits the threshold placement to users' scores (see calibrateThreshold).
func fitThreshold(trials []levelScores) (models.ThresholdConfig, float64, error) {
	var typical float64
	for _, t := range trials {
		typical += t.level / float64(len(trials))
	}
	best := models.ThresholdConfig{Typical: typical, Set: true}
	bestEER := math.Inf(1)
	var bestGen, bestImp []float64
	for _, slope := range []float64{0, 0.25, 0.5, 0.75, 1} {
		var gen, imp []float64
		for _, t := range trials {
			shift := slope * (t.level - typical)
			for _, s := range t.gen {
				gen = append(gen, s-shift)
			}
			for _, s := range t.imp {
				imp = append(imp, s-shift)
			}
		}
		c, err := metrics.ROC(gen, imp)
		if err != nil {
			return best, 0, err
		}
		if e := c.EER(); e < bestEER {
			bestEER = e
			best.Slope, best.Offset = slope, c.EERThreshold()
			bestGen, bestImp = gen, imp
		}
	}
	best.Temperature = logisticTemperature(bestGen, bestImp, best.Offset)
	return best, bestEER, nil
}

// logisticTemperature fits T in P(impostor | s) = 1/(1+exp(-(s-offset)/T)) by Newton's method
// on the class-balanced log-likelihood.
func logisticTemperature(gen, imp []float64, offset float64) float64 {
	a := 1.0 // a = 1/T
	wg, wi := 0.5/float64(len(gen)), 0.5/float64(len(imp))
	for iter := 0; iter < 50; iter++ {
		var grad, hess float64
		step := func(x, y, w float64) { // y = 1 impostor, 0 genuine
			p := 1 / (1 + math.Exp(-a*x))
			grad += w * (y - p) * x
			hess += w * p * (1 - p) * x * x
		}
		for _, s := range gen {
			step(s-offset, 0, wg)
		}
		for _, s := range imp {
			step(s-offset, 1, wi)
		}
		if hess <= 0 {
			break
		}
		d := grad / hess
		a += d
		if a <= 0 {
			a = 1e-3
		}
		if math.Abs(d) < 1e-9*a {
			break
		}
	}
	return 1 / a
}
