package eval

import (
	"math/rand/v2"
	"slices"

	"github.com/vigilauth/vigil/models/metrics"
)

// Interval is a bootstrap 95% interval: the 2.5th and 97.5th percentiles of a statistic over
// resamples.
type Interval struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// bootstrapResamples is the number of resamples behind every interval: enough for the 2.5th and
// 97.5th percentiles to move by well under their width between seeds.
const bootstrapResamples = 500

// scoredTrial is one trial of the pooled ROC, remembered with its user so that a resample of
// users can weigh it.
type scoredTrial struct {
	score    float64
	user     int32
	impostor bool
}

// bootstrapRates returns bootstrap intervals of the mean per-user EER and the pooled EER of the
// combined score over users: each resample draws users with replacement, and a drawn user
// brings all their trials. The pooled EER is computed from trials sorted once and weighed by
// each user's multiplicity, so a resample costs one pass.
func bootstrapRates(trials []userTrials, userEER []float64, mode int, seed uint64) (mean, pooled Interval) {
	var all []scoredTrial
	for u, t := range trials {
		for _, s := range t.gen[mode][detCombined] {
			all = append(all, scoredTrial{s, int32(u), false})
		}
		for _, s := range t.imp[mode][detCombined] {
			all = append(all, scoredTrial{s, int32(u), true})
		}
	}
	sortTrials(all)
	rng := rand.New(rand.NewPCG(seed, 0xb007))
	n := len(trials)
	weight := make([]float64, n)
	means := make([]float64, bootstrapResamples)
	pools := make([]float64, bootstrapResamples)
	for r := range means {
		clear(weight)
		var sum float64
		for i := 0; i < n; i++ {
			u := rng.IntN(n)
			weight[u]++
			sum += userEER[u]
		}
		means[r] = sum / float64(n)
		pools[r] = weightedEER(all, weight)
	}
	return percentiles(means), percentiles(pools)
}

// sortTrials sorts trials by score.
func sortTrials(ts []scoredTrial) {
	slices.SortFunc(ts, func(a, b scoredTrial) int {
		switch {
		case a.score < b.score:
			return -1
		case a.score > b.score:
			return 1
		}
		return 0
	})
}

// weightedEER is metrics.Curve.EER of the sorted trials, each counting its user's weight.
func weightedEER(sorted []scoredTrial, weight []float64) float64 {
	var ng, ni float64
	for _, t := range sorted {
		if t.impostor {
			ni += weight[t.user]
		} else {
			ng += weight[t.user]
		}
	}
	if ng == 0 || ni == 0 {
		return 0.5
	}
	pFAR, pFRR := 0.0, 1.0
	var accG, accI float64
	for i := 0; i < len(sorted); {
		s := sorted[i].score
		for ; i < len(sorted) && sorted[i].score == s; i++ {
			if sorted[i].impostor {
				accI += weight[sorted[i].user]
			} else {
				accG += weight[sorted[i].user]
			}
		}
		qFAR, qFRR := accI/ni, 1-accG/ng
		dp, dq := pFAR-pFRR, qFAR-qFRR
		if dq >= 0 {
			if dq == dp {
				return (qFAR + qFRR) / 2
			}
			t := -dp / (dq - dp)
			return pFAR + t*(qFAR-pFAR)
		}
		pFAR, pFRR = qFAR, qFRR
	}
	return 0.5
}

func percentiles(xs []float64) Interval {
	s := slices.Clone(xs)
	slices.Sort(s)
	return Interval{Lo: quantileSorted(s, 0.025), Hi: quantileSorted(s, 0.975)}
}

// quantileSorted interpolates the q-quantile of sorted values.
func quantileSorted(s []float64, q float64) float64 {
	if len(s) == 0 {
		return 0
	}
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (pos-float64(i))*(s[i+1]-s[i])
}

// bootstrapAUC returns a bootstrap interval of the AUC over trials (sessions), resampling
// genuine and impostor trials separately so that every resample has both.
func bootstrapAUC(gen, imp []float64, seed uint64) Interval {
	rng := rand.New(rand.NewPCG(seed, 0xa0c))
	aucs := make([]float64, 0, bootstrapResamples)
	g, im := make([]float64, len(gen)), make([]float64, len(imp))
	for r := 0; r < bootstrapResamples; r++ {
		for i := range g {
			g[i] = gen[rng.IntN(len(gen))]
		}
		for i := range im {
			im[i] = imp[rng.IntN(len(imp))]
		}
		if a, err := metrics.AUC(g, im); err == nil {
			aucs = append(aucs, a)
		}
	}
	return percentiles(aucs)
}
