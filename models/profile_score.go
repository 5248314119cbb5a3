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
	var sum, weight [kindSlots]float64
	// Counts are integers, incremented in place, and converted (exactly) at the end.
	var count [kindSlots]int
	for k, kind := range p.layout.Kinds {
		weight[k&(kindSlots-1)] = kind.Weight
	}
	// The live path's inner loop. The events of unscored buckets (kind -1, zero coefficients:
	// evidence 0, never offered; a keystroke's plain hold, a fifth of a window's events) are
	// skipped, which spares their arithmetic. In the dense loop below, they go through it
	// without a branch and land in the discarded last slot. The mask spares the arrays' bounds
	// checks.
	coef, clamp := p.coef, p.cfg.Clamp
	for _, e := range w.Events {
		if uint(e.Bucket) >= uint(len(coef)) {
			continue
		}
		c := &coef[e.Bucket]
		if c.kind < 0 {
			continue
		}
		k := c.kind & (kindSlots - 1)
		zu, llr := c.evidence(e.Value, clamp)
		sum[k] += llr
		count[k]++
		if top != nil && llr < 0 {
			evid := -llr * weight[k]
			top.tally(k, evid)
			if top.admits(e.Bucket, evid) {
				top.place(e.Bucket, k, e.Value, c.mean, zu, evid)
			}
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
			evid := -llr * weight[k]
			top.tally(k, evid)
			if top.admits(b, evid) {
				top.place(b, k, v, c.mean, zu, evid)
			}
		}
	}
	var s float64
	var n [maxKinds]float64
	for k, kind := range p.layout.Kinds {
		if n[k] = float64(count[k]); n[k] > 0 {
			s -= kind.Weight * sum[k] / n[k]
		}
	}
	if top != nil {
		top.normalise(n[:len(p.layout.Kinds)])
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
