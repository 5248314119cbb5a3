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
	var sum, count, weight [kindSlots]float64
	for k, kind := range p.layout.Kinds {
		weight[k&(kindSlots-1)] = kind.Weight
	}
	// The live path's inner loop. An event of an unscored bucket needs no branch: its bucket has
	// zero coefficients (evidence 0, never offered) and kind -1, whose slot is discarded; the
	// mask also spares the arrays' bounds checks.
	coef, clamp := p.coef, p.cfg.Clamp
	for _, e := range w.Events {
		if uint(e.Bucket) >= uint(len(coef)) {
			continue
		}
		c := &coef[e.Bucket]
		k := c.kind & (kindSlots - 1)
		zu, llr := c.evidence(e.Value, clamp)
		sum[k] += llr
		count[k]++
		if top != nil && llr < 0 {
			top.offer(e.Bucket, k, e.Value, c.mean, zu, -llr*weight[k])
		}
	}
	for d, v := range w.Dense {
		b := p.layout.DenseBase + d
		if v != v || uint(b) >= uint(len(coef)) {
			continue
		}
		c := &coef[b]
		k := c.kind & (kindSlots - 1)
		zu, llr := c.evidence(v, clamp)
		sum[k] += llr
		count[k]++
		if top != nil && llr < 0 {
			top.offer(b, k, v, c.mean, zu, -llr*weight[k])
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

// kindSlots is the size of score's per-kind arrays: every kind (below maxKinds) has a slot, and
// kind -1 (not scored) lands in the last, which is discarded.
const kindSlots = 2 * maxKinds

// evidence returns the standardised distance of v from the user's expected value, clamped, and
// the log-likelihood ratio of the user to the population for v. The clamps are written as
// branches, which agree with max(-clamp, min(clamp, z)) for every z (NaN included) and cost
// less when, as here, they rarely bite; the function stays small enough to be inlined.
func (c *bucketCoef) evidence(v, clamp float64) (zu, llr float64) {
	zu = (v - c.mean) * c.invUser
	zp := (v - c.popMean) * c.invPop
	if zu > clamp {
		zu = clamp
	} else if zu < -clamp {
		zu = -clamp
	}
	if zp > clamp {
		zp = clamp
	} else if zp < -clamp {
		zp = -clamp
	}
	return zu, c.logTerm - 0.5*zu*zu + 0.5*zp*zp
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
