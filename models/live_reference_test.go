package models

import "math"

// This file keeps the live path's scoring as first written, one event at a time and without
// the shortcuts of the optimised loop (a cached weakest deviation and a mask of the listed
// buckets, unscored buckets skipped or sent to a discarded slot, integer counts, clamps as
// branches), so that tests can hold the optimised path to it
// (TestLiveScoresMatchReference). The autoencoder and the forest are shared: the autoencoder
// is held to the Gorgonia graph by TestUserModelAutoencoderMatchesGraph.

// referenceScore is UserModel.Score computed the reference way.
func referenceScore(m *UserModel, w Window) (Scores, []Deviation) {
	top := topDeviations{layout: m.layout}
	var s Scores
	s.Profile = referenceProfileScore(m.profile, w, &top)
	if len(w.Dense) == len(m.buf) {
		x := make([]float64, len(w.Dense))
		for j, v := range w.Dense {
			if v != v {
				continue
			}
			x[j] = (v - m.norm.Center[j]) / m.norm.Scale[j]
		}
		if m.ae != nil {
			s.Autoencoder = math.Log(m.ae.Score(x)+aeFloor) - m.aeCenter
		}
		if m.forest != nil {
			s.Forest = (m.forest.Score(x) - m.forCenter) * forestScale
		}
	}
	wt := m.cfg.Weights
	s.Combined = wt.Profile*s.Profile + wt.Autoencoder*s.Autoencoder + wt.Forest*s.Forest
	s.Anomaly = 1 / (1 + math.Exp(-(s.Combined-m.threshold)/m.cfg.Threshold.Temperature))
	return s, top.appendTo(nil)
}

// referenceProfileScore is Profile.score with each event scored and offered in turn.
func referenceProfileScore(p *Profile, w Window, top *topDeviations) float64 {
	var sum, count [maxKinds]float64
	event := func(b int, v float64) {
		if uint(b) >= uint(len(p.coef)) {
			return
		}
		c := &p.coef[b]
		if c.kind < 0 {
			return
		}
		clamp := p.cfg.Clamp
		zu := (v - c.mean) * c.invUser
		zp := (v - c.popMean) * c.invPop
		zu = max(-clamp, min(clamp, zu))
		zp = max(-clamp, min(clamp, zp))
		llr := c.logTerm - 0.5*zu*zu + 0.5*zp*zp
		sum[c.kind] += llr
		count[c.kind]++
		if llr < 0 {
			top.referenceOffer(b, c.kind, v, c.mean, zu, -llr*p.layout.Kinds[c.kind].Weight)
		}
	}
	for _, e := range w.Events {
		event(e.Bucket, e.Value)
	}
	for d, v := range w.Dense {
		if v == v {
			event(p.layout.DenseBase+d, v)
		}
	}
	var s float64
	for k, kind := range p.layout.Kinds {
		if count[k] > 0 {
			s -= kind.Weight * sum[k] / count[k]
		}
	}
	top.normalise(count[:len(p.layout.Kinds)])
	return s
}

// referenceOffer is topDeviations.offer searching for the weakest item every time.
func (t *topDeviations) referenceOffer(b, k int, v, base, z, evid float64) {
	if evid > 0 {
		t.total[k] += evid
	}
	for i := 0; i < t.n; i++ {
		if it := &t.items[i]; it.bucket == b {
			it.sumV += v
			it.sumZ += z
			it.events++
			it.evid += evid
			return
		}
	}
	if evid <= 0 {
		return
	}
	item := devItem{bucket: b, kind: k, sumV: v, sumZ: z, events: 1, evid: evid, baseline: base}
	if t.n < MaxDeviations {
		t.items[t.n] = item
		t.n++
		return
	}
	weakest := 0
	for i := 1; i < t.n; i++ {
		if t.items[i].evid < t.items[weakest].evid {
			weakest = i
		}
	}
	if t.items[weakest].evid < evid {
		t.items[weakest] = item
	}
}

// referenceForestScore is IsolationForest.Score as first written: each tree of g walked from its
// root to the leaf that isolates x, adding the leaf's depth and c(size) as it is reached.
func referenceForestScore(g *grower, norm float64, x []float64) float64 {
	var total float64
	for _, root := range g.roots {
		n := root
		depth := 0.0
		for {
			node := &g.nodes[n]
			if node.feature < 0 {
				total += depth + avgPathLength(node.size)
				break
			}
			if x[node.feature] < node.split {
				n = node.left
			} else {
				n = node.right
			}
			depth++
		}
	}
	return math.Exp2(-total / float64(len(g.roots)) / norm)
}
