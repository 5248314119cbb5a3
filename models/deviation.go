package models

import (
	"fmt"
	"math"
)

// MaxDeviations is the number of deviations a score explains itself with.
const MaxDeviations = 5

// Deviation is one way a window differed from the user's baseline, in words a person can read:
// "hold time of E: 142 ms, usually 98 ms (+2.9 sd)".
type Deviation struct {
	// Feature names what was measured, e.g. "hold time of E".
	Feature string
	// Value is what the window showed and Baseline what the user usually shows, in Unit (empty
	// when the feature has no natural unit). When a window has several events of one feature,
	// Value is their mean.
	Value, Baseline float64
	Unit            string
	// Z is how far Value lies from Baseline in the user's own standard deviations, signed.
	Z float64
	// Share is the part of the window's anomaly evidence this feature accounts for, in [0, 1].
	Share float64
	// Bucket is the feature's bucket in the layout.
	Bucket int
}

// String renders d as one line of plain words.
func (d Deviation) String() string {
	unit := ""
	if d.Unit != "" {
		unit = " " + d.Unit
	}
	return fmt.Sprintf("%s: %.3g%s, usually %.3g%s (%+.1f sd, %.0f%% of the evidence)",
		d.Feature, d.Value, unit, d.Baseline, unit, d.Z, 100*d.Share)
}

// topDeviations keeps the buckets with the most anomaly evidence in a window, in fixed storage
// so that explaining a score allocates nothing.
type topDeviations struct {
	layout *Layout
	n      int
	// mask has bit b&63 set for the bucket b of every item; weak is the index of the first item
	// with the least evidence, and floor the evidence an event of a bucket not listed must
	// exceed to be listed: 0 until the list is full, then the weakest item's. Most events
	// offered are of no listed bucket and weaker than all of a full list, which these tell
	// without looking through the items (evid is never NaN: score offers events with llr < 0).
	weak  int
	mask  uint64
	floor float64
	items [MaxDeviations]devItem
	total [maxKinds]float64 // positive evidence per kind
	all   float64           // positive evidence of the window, in score units
}

type devItem struct {
	bucket, kind             int
	sumV, sumZ, events, evid float64
	baseline                 float64
}

func (t *topDeviations) reset(l *Layout) { *t = topDeviations{layout: l} }

// Offering one event of bucket b (of kind k) with value v against the user's expected value
// base, standardised distance z and weighted anomaly evidence evid (negative: evidence for the
// user) is tally, then place when admits: the first two are small enough to be inlined in
// score's loop, and most events offered go no further.

// tally adds the event's positive evidence to its kind's.
func (t *topDeviations) tally(k int, evid float64) {
	if evid > 0 {
		t.total[k] += evid
	}
}

// admits reports whether an event of bucket b with evidence evid can change the list: its
// bucket may be listed, or it would enter the list.
func (t *topDeviations) admits(b int, evid float64) bool {
	return t.mask&(1<<(uint(b)&63)) != 0 || evid > t.floor
}

// place records the event in the list: adding to its bucket's item, or listing its bucket.
func (t *topDeviations) place(b, k int, v, base, z, evid float64) {
	// Most events placed are of a bucket not listed, which mask tells without the search.
	for i := 0; i < t.n && t.mask&(1<<(uint(b)&63)) != 0; i++ {
		if it := &t.items[i]; it.bucket == b {
			it.sumV += v
			it.sumZ += z
			it.events++
			it.evid += evid
			t.update()
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
		t.update()
		return
	}
	if t.items[t.weak].evid < evid {
		t.items[t.weak] = item
		t.update()
	}
}

// update recomputes mask and weak after the items changed.
func (t *topDeviations) update() {
	var mask uint64
	weakest, least := 0, t.items[0].evid
	for i := 0; i < t.n; i++ {
		mask |= 1 << (uint(t.items[i].bucket) & 63)
		if e := t.items[i].evid; e < least {
			weakest, least = i, e
		}
	}
	t.mask, t.weak = mask, weakest
	if t.n == MaxDeviations {
		t.floor = least
	}
}

// normalise turns evidence into the units of the score, which averages each kind over its
// events: count[k] is the number of events of kind k in the window.
func (t *topDeviations) normalise(count []float64) {
	var total float64
	for k, c := range count {
		if c > 0 {
			total += t.total[k] / c
		}
	}
	for i := 0; i < t.n; i++ {
		t.items[i].evid /= count[t.items[i].kind]
	}
	t.all = total
}

// appendTo writes the deviations, strongest first, into dst[:0].
func (t *topDeviations) appendTo(dst []Deviation) []Deviation {
	dst = dst[:0]
	// Insertion sort of the items' indices (cheaper to move than the items), strongest first:
	// at most MaxDeviations, and equal ones keep their order.
	var order [MaxDeviations]int
	for i := range t.n {
		order[i] = i
	}
	for i := 1; i < t.n; i++ {
		for j := i; j > 0 && t.items[order[j]].evid > t.items[order[j-1]].evid; j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for _, o := range order[:t.n] {
		it := &t.items[o]
		if it.evid <= 0 {
			continue
		}
		d := Deviation{
			Feature:  t.layout.Names[it.bucket],
			Value:    it.sumV / it.events,
			Baseline: it.baseline,
			Z:        it.sumZ / it.events,
			Bucket:   it.bucket,
		}
		if t.all > 0 {
			d.Share = math.Min(it.evid/t.all, 1)
		}
		if t.layout.Natural != nil {
			d.Value, d.Unit = t.layout.Natural(it.bucket, d.Value)
			d.Baseline, _ = t.layout.Natural(it.bucket, d.Baseline)
		}
		dst = append(dst, d)
	}
	return dst
}
