package models

import "fmt"

// Score returns the window's anomaly evidence: the weighted mean over kinds of the log-likelihood
// ratio of population to user (or the user's negative log-likelihood without a population).
// Higher is less like the user. w must fit the profile's layout; events in unknown buckets are
// ignored.
func (p *Profile) Score(w Window) float64 {
	return p.score(w, nil)
}

func (p *Profile) score(w Window, top *topDeviations) float64 {
	var sum, count [maxKinds]float64
	for _, e := range w.Events {
		p.event(e.Bucket, e.Value, &sum, &count, top)
	}
	for d, v := range w.Dense {
		if v == v {
			p.event(p.layout.DenseBase+d, v, &sum, &count, top)
		}
	}
	var s float64
	for k, kind := range p.layout.Kinds {
		if count[k] > 0 {
			s -= kind.Weight * sum[k] / count[k]
		}
	}
	if top != nil {
		top.normalise(count[:len(p.layout.Kinds)])
	}
	return s
}

// event adds the evidence of one event to its kind's sum and count.
func (p *Profile) event(b int, v float64, sum, count *[maxKinds]float64, top *topDeviations) {
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
	if top != nil && llr < 0 {
		top.offer(b, c.kind, v, c.mean, zu, -llr*p.layout.Kinds[c.kind].Weight)
	}
}

// Observe adds a window the user is known to have produced to the profile, after discounting
// what the profile learnt so far by keep (in (0, 1]; 1 forgets nothing), so that the baseline
// follows slow drift in the user's behaviour.
func (p *Profile) Observe(w Window, keep float64) error {
	if !(keep > 0 && keep <= 1) {
		return fmt.Errorf("models: keep %v out of range (0, 1]", keep)
	}
	if err := p.layout.checkWindow(w); err != nil {
		return err
	}
	if keep < 1 {
		for b := range p.acc.n {
			p.acc.n[b] *= keep
			p.acc.sum[b] *= keep
			p.acc.sumSq[b] *= keep
		}
	}
	p.acc.addWindow(p.layout, w, 1)
	p.refresh()
	return nil
}
