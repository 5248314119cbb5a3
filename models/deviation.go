package models

import "fmt"

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
	total [kindSlots]float64 // positive evidence per kind (indexed as score's arrays are)
	all   float64            // positive evidence of the window, in score units
}

type devItem struct {
	bucket, kind             int
	sumV, sumZ, events, evid float64
	baseline                 float64
}

// reset empties the list for a window of layout l. The items are not cleared: those past n are
// never read, and place writes every field of an item it lists.
func (t *topDeviations) reset(l *Layout) {
	t.layout, t.n, t.weak, t.mask, t.floor, t.all = l, 0, 0, 0, 0, 0
	t.total = [kindSlots]float64{}
}

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
// Once the list is full, the evidence of its items only grows, and weak and floor change only
// when the weakest item grows or is replaced; until then they are not used.
func (t *topDeviations) place(b, k int, v, base, z, evid float64) {
	// Most events placed are of a bucket not listed, which mask tells without the search.
	if t.mask&(1<<(uint(b)&63)) != 0 {
		for i := range t.items[:t.n] {
			if it := &t.items[i]; it.bucket == b {
				it.sumV += v
				it.sumZ += z
				it.events++
				it.evid += evid
				if i == t.weak && t.n == MaxDeviations {
					t.settle()
				}
				return
			}
		}
	}
	if evid <= 0 {
		return
	}
	var it *devItem
	switch {
	case t.n < MaxDeviations:
		it = &t.items[t.n]
		t.n++
	case t.floor < evid: // the weakest item's evidence
		it = &t.items[t.weak]
	default:
		return
	}
	// Field by field: a composite literal would be built aside and copied.
	it.bucket, it.kind, it.baseline = b, k, base
	it.sumV, it.sumZ, it.events, it.evid = v, z, 1, evid
	if t.n < MaxDeviations {
		t.mask |= 1 << (uint(b) & 63)
		return
	}
	t.settle()
}

// settle recomputes mask, weak and floor from the items of the full list. The first five items
// are written out: as a loop, the compiler shuffled the loop's registers on every item and
// settling cost three times as many instructions.
func (t *topDeviations) settle() {
	it := &t.items
	mask := uint64(1)<<(uint(it[0].bucket)&63) | 1<<(uint(it[1].bucket)&63) |
		1<<(uint(it[2].bucket)&63) | 1<<(uint(it[3].bucket)&63) | 1<<(uint(it[4].bucket)&63)
	weakest, least := 0, it[0].evid
	if e := it[1].evid; e < least {
		weakest, least = 1, e
	}
	if e := it[2].evid; e < least {
		weakest, least = 2, e
	}
	if e := it[3].evid; e < least {
		weakest, least = 3, e
	}
	if e := it[4].evid; e < least {
		weakest, least = 4, e
	}
	for i := 5; i < len(it); i++ { // should MaxDeviations grow
		mask |= 1 << (uint(it[i].bucket) & 63)
		if e := it[i].evid; e < least {
			weakest, least = i, e
		}
	}
	t.mask, t.weak, t.floor = mask, weakest, least
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
	// at most MaxDeviations, and equal ones keep their order. Each index moves with its
	// evidence, so that the comparisons read neither through order nor the items.
	var order [MaxDeviations]int
	var evid [MaxDeviations]float64
	for i := range t.items[:t.n] {
		o, e := i, t.items[i].evid
		j := i
		for ; j > 0 && e > evid[j-1]; j-- {
			order[j], evid[j] = order[j-1], evid[j-1]
		}
		order[j], evid[j] = o, e
	}
	if cap(dst) < t.n { // once per model: dst is reused
		dst = make([]Deviation, 0, MaxDeviations)
	}
	for _, o := range order[:t.n] {
		it := &t.items[o]
		if it.evid <= 0 {
			continue
		}
		// In place, field by field: a Deviation built aside would be copied in.
		dst = dst[:len(dst)+1]
		d := &dst[len(dst)-1]
		d.Feature, d.Unit, d.Bucket = t.layout.Names[it.bucket], "", it.bucket
		d.Value, d.Baseline, d.Z, d.Share = it.sumV/it.events, it.baseline, it.sumZ/it.events, 0
		if t.all > 0 {
			d.Share = min(it.evid/t.all, 1)
		}
		if t.layout.Natural != nil {
			d.Value, d.Unit = t.layout.Natural(it.bucket, d.Value)
			d.Baseline, _ = t.layout.Natural(it.bucket, d.Baseline)
		}
	}
	return dst
}
