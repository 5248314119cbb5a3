package models

import (
	"fmt"
	"math"
)

// Score returns the window's anomaly evidence: the weighted mean over kinds of the log-likelihood
// ratio of population to user (or the user's negative log-likelihood without a population).
// Higher is less like the user. w must fit the profile's layout; events in unknown buckets are
// ignored.
func (p *Profile) Score(w Window) float64 {
	return p.score(w, nil)
}

// score is Score, explained in top when not nil.
func (p *Profile) score(w Window, top *topDeviations) float64 {
	if top == nil {
		// Scoring always explains: testing for a list on every event would cost the live path
		// more than a discarded one costs here.
		top = &topDeviations{layout: p.layout}
	}
	var e kindEvidence
	for k, kind := range p.layout.Kinds {
		e.weight[k&(kindSlots-1)] = kind.Weight
	}
	e.clamp = p.cfg.Clamp
	e.limit = math.Float64bits(e.clamp) << 1
	e.addEvents(p.coef, w.Events, top)
	// The dense entries score in buckets DenseBase onwards; entries beyond the coefficients, like
	// events in unknown buckets, are ignored.
	if base := p.layout.DenseBase; base >= 0 && base <= len(p.coef) {
		coef := p.coef[base:]
		e.addDense(coef[:min(len(coef), len(w.Dense))], w.Dense, base, top)
	}
	var s float64
	var n [maxKinds]float64
	for k, kind := range p.layout.Kinds {
		if n[k] = float64(e.count[k]); n[k] > 0 {
			s -= kind.Weight * e.sum[k] / n[k]
		}
	}
	top.normalise(n[:len(p.layout.Kinds)])
	return s
}

// kindSlots is the size of kindEvidence's arrays: every kind (below maxKinds) has a slot, and
// kind -1 (not scored) lands in the last, which is discarded.
const kindSlots = 2 * maxKinds

// kindEvidence accumulates a window's evidence per kind. Counts are integers, incremented in
// place, and converted (exactly) at the end. The scoring loops are methods of their own, so
// that their few hot values stay in registers.
type kindEvidence struct {
	sum, weight [kindSlots]float64
	count       [kindSlots]int
	clamp       float64
	limit       uint64
}

// addEvents scores the events: the live path's inner loop. The events of unscored buckets
// (kind -1, zero coefficients: evidence 0, never offered; a keystroke's plain hold, a fifth of
// a window's events) are skipped, which spares their arithmetic. The mask spares the arrays'
// bounds checks.
func (e *kindEvidence) addEvents(coef []bucketCoef, events []Event, top *topDeviations) {
	limit := e.limit
	for i := range events {
		ev := &events[i]
		if uint(ev.Bucket) >= uint(len(coef)) {
			continue
		}
		c := &coef[ev.Bucket]
		if c.kind < 0 {
			continue
		}
		k := c.kind & (kindSlots - 1)
		zu, zp := c.distances(ev.Value)
		if beyond(zu, zp, limit) {
			zu, zp = clampTo(zu, e.clamp), clampTo(zp, e.clamp)
		}
		llr := c.llr(zu, zp)
		e.sum[k] += llr
		e.count[k]++
		if llr < 0 {
			evid := -llr * e.weight[k]
			top.tally(k, evid)
			if top.admits(ev.Bucket, evid) {
				top.place(ev.Bucket, k, ev.Value, c.mean, zu, evid)
			}
		}
	}
}

// addDense scores the window's dense entries, dense[d] in bucket base+d with coefficients
// coef[d]. NaN marks an entry the window cannot support, which is skipped: a NaN value gives NaN
// distances, so the test waits for the rare case of a distance beyond the clamp. The entries of
// unscored buckets go through the arithmetic without a branch and land in the discarded last
// slot.
func (e *kindEvidence) addDense(coef []bucketCoef, dense []float64, base int, top *topDeviations) {
	limit := e.limit
	dense = dense[:len(coef)]
	for d := range coef {
		c := &coef[d]
		v := dense[d]
		zu, zp := c.distances(v)
		if beyond(zu, zp, limit) {
			if v != v {
				continue
			}
			zu, zp = clampTo(zu, e.clamp), clampTo(zp, e.clamp)
		}
		k := c.kind & (kindSlots - 1)
		llr := c.llr(zu, zp)
		e.sum[k] += llr
		e.count[k]++
		if llr < 0 {
			evid := -llr * e.weight[k]
			top.tally(k, evid)
			if top.admits(base+d, evid) {
				top.place(base+d, k, v, c.mean, zu, evid)
			}
		}
	}
}

// distances returns the standardised distances of v from the user's and the population's
// expected values, unclamped.
func (c *bucketCoef) distances(v float64) (zu, zp float64) {
	return (c.negMean + v) * c.invUser, (c.negPopMean + v) * c.invPop
}

// beyond reports whether zu or zp may lie beyond the clamp (positive, as ProfileConfig.validate
// ensures) whose bits, shifted left by one, are limit: for values of one sign, the order of
// their bits is the order of their magnitudes, and the shift drops the sign. The bits of either
// distance are at most their union (their OR), so a union within the limit puts both within
// the clamp, where clampTo would leave them unchanged (and neither is NaN, whose bits exceed
// those of every number). A union beyond it is not sure (distances of 2 and 1.5 with a clamp of
// 3 have one), but rare, and clampTo decides. Two integer moves, an OR and a compare cost less
// than the four float compares of clamping both.
func beyond(zu, zp float64, limit uint64) bool {
	return (math.Float64bits(zu)|math.Float64bits(zp))<<1 > limit
}

// clampTo returns z clamped to [-clamp, clamp]. Written as branches, it agrees with
// max(-clamp, min(clamp, z)) for every z (NaN included). The scoring loops call it only when a
// distance is beyond the clamp (or NaN): within it, it would return z unchanged.
func clampTo(z, clamp float64) float64 {
	if z > clamp {
		return clamp
	} else if z < -clamp {
		return -clamp
	}
	return z
}

// llr returns the log-likelihood ratio of the user to the population for a value at clamped
// distances zu and zp.
func (c *bucketCoef) llr(zu, zp float64) float64 {
	return c.logTerm - 0.5*zu*zu + 0.5*zp*zp
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
