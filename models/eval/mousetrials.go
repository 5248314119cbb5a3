package eval

import (
	"fmt"
	"maps"
	"slices"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/metrics"
)

// sessionScore is the mean over a session's actions of the combined score relative to the
// user's threshold: above 0, the session looks like someone else.
func sessionScore(m *models.UserModel, windows []models.Window) float64 {
	return detectorMeans(m, windows)[detCombined] - m.Threshold()
}

// detectorMeans are the means over a session's actions of each detector's scores.
func detectorMeans(m *models.UserModel, windows []models.Window) [numDetectors]float64 {
	var det [numDetectors]float64
	for _, w := range windows {
		s := m.Detail(w)
		det[detProfile] += s.Profile
		det[detAutoencoder] += s.Autoencoder
		det[detForest] += s.Forest
		det[detCombined] += s.Combined
	}
	for d := range det {
		det[d] /= float64(len(windows))
	}
	return det
}

// holdOut removes each user's last training session from byUser and cuts it into pseudo-test
// sessions of n actions.
func holdOut(byUser map[string][]mouseSession, users []string, n int) []mouseSession {
	var out []mouseSession
	for _, u := range users {
		ss := byUser[u]
		if len(ss) < 2 {
			continue
		}
		last := ss[len(ss)-1]
		byUser[u] = ss[:len(ss)-1]
		for i := 0; i+n <= len(last.windows); i += n {
			out = append(out, mouseSession{user: u, name: fmt.Sprintf("%s/%s#%d", u, last.name, i/n), windows: last.windows[i : i+n]})
		}
	}
	return out
}

func mouseOutcome(trials []mouseTrial, mode int) (MouseOutcome, error) {
	o := MouseOutcome{UserEER: map[string]float64{}, Detectors: map[string]float64{}}
	for d := 0; d < numDetectors; d++ {
		var g, im []float64
		for _, t := range trials {
			if t.impostor {
				im = append(im, t.detector[mode][d])
			} else {
				g = append(g, t.detector[mode][d])
			}
		}
		auc, err := metrics.AUC(g, im)
		if err != nil {
			return o, err
		}
		o.Detectors[detectorNames[d]] = auc
	}
	var gen, imp []float64
	perUser := map[string][2][]float64{}
	var fa, fr int
	for _, t := range trials {
		s := t.score[mode]
		p := perUser[t.user]
		if t.impostor {
			imp = append(imp, s)
			p[1] = append(p[1], s)
			if s < 0 {
				fa++
			}
		} else {
			gen = append(gen, s)
			p[0] = append(p[0], s)
			if s >= 0 {
				fr++
			}
		}
		perUser[t.user] = p
	}
	c, err := metrics.ROC(gen, imp)
	if err != nil {
		return o, err
	}
	o.AUC, o.EERPooled, o.Curve = c.AUC(), c.EER(), c
	o.AUCCI = bootstrapAUC(gen, imp, uint64(len(trials)))
	o.FAR, o.FRR = float64(fa)/float64(len(imp)), float64(fr)/float64(len(gen))
	var n int
	// In the users' order, so that the mean is the same float from run to run.
	for _, u := range slices.Sorted(maps.Keys(perUser)) {
		p := perUser[u]
		e, err := metrics.EER(p[0], p[1])
		if err != nil {
			continue // a user without both kinds of session has no EER
		}
		o.UserEER[u] = e
		o.EERMean += e
		n++
	}
	if n > 0 {
		o.EERMean /= float64(n)
	}
	byUser := map[string]*levelScores{}
	var ls []*levelScores
	for _, t := range trials {
		u := byUser[t.user]
		if u == nil {
			u = &levelScores{level: t.level[mode]}
			byUser[t.user] = u
			ls = append(ls, u)
		}
		if t.impostor {
			u.imp = append(u.imp, t.detector[mode][detCombined])
		} else {
			u.gen = append(u.gen, t.detector[mode][detCombined])
		}
	}
	var fit []levelScores
	for _, u := range ls {
		fit = append(fit, *u)
	}
	o.Fitted, o.FittedEER, err = fitThreshold(fit)
	return o, err
}
