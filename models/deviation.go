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
	// weak is 1 + the index of the first item with the least evidence once all MaxDeviations are
	// taken, or 0 when it is not known (an item has changed since it was found).
	weak  int
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

// offer records one event of bucket b (of kind k) with value v against the user's expected value
// base, standardised distance z and weighted anomaly evidence evid (negative: evidence for the
// user).
func (t *topDeviations) offer(b, k int, v, base, z, evid float64) {
	if evid > 0 {
		t.total[k] += evid
	}
	for i := 0; i < t.n; i++ {
		if it := &t.items[i]; it.bucket == b {
			it.sumV += v
			it.sumZ += z
			it.events++
			it.evid += evid
			t.weak = 0
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
		t.weak = 0
		return
	}
	// Most events offered to a full list are weaker than all of it: the weakest item is kept
	// between them instead of being searched for each time.
	if t.weak == 0 {
		weakest := 0
		for i := 1; i < t.n; i++ {
			if t.items[i].evid < t.items[weakest].evid {
				weakest = i
			}
		}
		t.weak = 1 + weakest
	}
	if weakest := t.weak - 1; t.items[weakest].evid < evid {
		t.items[weakest] = item
		t.weak = 0
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
	// Insertion sort: at most MaxDeviations items.
	for i := 1; i < t.n; i++ {
		for j := i; j > 0 && t.items[j].evid > t.items[j-1].evid; j-- {
			t.items[j], t.items[j-1] = t.items[j-1], t.items[j]
		}
	}
	for i := 0; i < t.n; i++ {
		it := t.items[i]
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
