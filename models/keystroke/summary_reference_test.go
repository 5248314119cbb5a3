package keystroke

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// referenceTimings is what Extract computes, the plain way: every transform computed rather
// than looked up, every series sorted with slices.Sort. ok is false for a window too sparse.
func referenceTimings(window []Keystroke) (summary []float64, events []Event, ok bool) {
	n := len(window)
	logHold, logDD, gapUD := make([]float64, n), make([]float64, n), make([]float64, n)
	for i, k := range window {
		logHold[i], logDD[i], gapUD[i] = math.NaN(), math.NaN(), math.NaN()
		if h, ok := k.Hold(); ok {
			logHold[i] = logMs(h)
		}
		if i == 0 {
			continue
		}
		prev := window[i-1]
		dd := k.Press - prev.Press
		if dd <= 0 || dd > maxDigraphGap {
			continue
		}
		logDD[i] = logMs(dd)
		if _, ok := prev.Hold(); ok {
			gapUD[i] = math.Asinh(float64(k.Press-prev.Release) / float64(20*time.Millisecond))
		}
	}
	var (
		hold, dd, ud                                                              []float64
		backspace, shift, caps, pauses, pairs, overlaps, inversions, releasePairs float64
		shiftHold, spaceHold, beforeSpace, afterSpace                             stat
	)
	for i, k := range window {
		switch k.Code {
		case CodeBackspace:
			backspace++
		case CodeShift:
			shift++
		case 20:
			caps++
		}
		if v := logHold[i]; v == v {
			hold = append(hold, v)
			switch k.Code {
			case CodeShift:
				shiftHold.add(v)
			case CodeSpace:
				spaceHold.add(v)
			}
		}
		if i == 0 {
			continue
		}
		prev := window[i-1]
		if k.Press <= prev.Press {
			continue
		}
		pairs++
		v := logDD[i]
		if v != v {
			pauses++
			continue
		}
		dd = append(dd, v)
		if k.Code == CodeSpace {
			beforeSpace.add(v)
		}
		if prev.Code == CodeSpace {
			afterSpace.add(v)
		}
		if u := gapUD[i]; u == u {
			ud = append(ud, u)
			if u < 0 {
				overlaps++
				if _, ok := k.Hold(); ok {
					releasePairs++
					if k.Release < prev.Release {
						inversions++
					}
				}
			}
		}
	}
	summary = make([]float64, NumSummaryFeatures)
	for _, s := range []struct {
		at int
		xs []float64
	}{{sumHold, hold}, {sumDD, dd}, {sumUD, ud}} {
		slices.Sort(s.xs)
		distribution(summary[s.at:s.at+7], s.xs)
	}
	nf := float64(n)
	summary[sumOverlap] = ratio(overlaps, float64(len(ud)))
	summary[sumInversion] = ratio(inversions, releasePairs)
	summary[sumBackspace] = backspace / nf
	summary[sumPause] = ratio(pauses, pairs)
	summary[sumShift] = shift / nf
	summary[sumCapsLock] = caps / nf
	summary[sumShiftHold] = shiftHold.mean() - summary[sumHold]
	summary[sumSpaceHold] = spaceHold.mean() - summary[sumHold]
	summary[sumBeforeSpace] = beforeSpace.mean() - summary[sumDD]
	summary[sumAfterSpace] = afterSpace.mean() - summary[sumDD]
	if len(hold) < minWindow || len(dd) < minWindow {
		return summary, nil, false
	}
	prevClass := -1
	for i, k := range window {
		c, ok := KeyClass(k.Code)
		if !ok {
			prevClass = -1
			continue
		}
		h := logHold[i]
		if h == h {
			events = append(events, Event{Bucket: c, Value: h})
		}
		if prevClass >= 0 {
			pair := prevClass*NumKeyClasses + c
			if v := logDD[i]; v == v {
				events = append(events, Event{Bucket: ddBase + pair, Value: v})
			}
			if v := gapUD[i]; v == v {
				events = append(events, Event{Bucket: udBase + pair, Value: v})
			}
			if h == h {
				events = append(events, Event{Bucket: hpBase + pair, Value: h})
			}
			if ph := logHold[i-1]; ph == ph {
				events = append(events, Event{Bucket: hnBase + pair, Value: ph})
			}
		}
		prevClass = c
	}
	return summary, events, true
}

func (s *stat) add(v float64) { s.sum += v; s.n++ }

// TestExtractMatchesReference holds Extract (tables, sorting by keys, one extractor reused
// across windows) to referenceTimings, bit for bit: on synthetic typing, on the Aalto data when
// it is present, and on windows that leave the fast paths: sub-millisecond clocks, timings
// outside the tables, long windows, overlapping and reversed keys, unknown key codes.
func TestExtractMatchesReference(t *testing.T) {
	var windows [][]Keystroke
	for seed := uint64(1); seed <= 20; seed++ {
		windows = append(windows, NewTypist(seed).Type(50), NewTypist(seed).Type(400))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 200; i++ {
		ks := NewTypist(uint64(i%7 + 1)).Type(10 + rng.IntN(300))
		for j := range ks {
			switch rng.IntN(12) {
			case 0: // a clock finer than a millisecond
				ks[j].Release += time.Duration(rng.IntN(1000)) * time.Microsecond
			case 1: // a stuck key, past the tables and the hold limit
				ks[j].Release += time.Duration(rng.IntN(5000)) * time.Millisecond
			case 2: // a release never seen
				ks[j].Release = 0
			case 3: // a pause or a clock that went back
				ks[j].Press += time.Duration(rng.IntN(4000)-1000) * time.Millisecond
			case 4:
				ks[j].Code = []int{-1, 2000, 20, 190, 37, 96}[rng.IntN(6)]
			}
		}
		windows = append(windows, ks)
	}
	if files, err := AaltoFiles(aaltoDir); err == nil {
		for _, f := range files[:min(20, len(files))] {
			p, _, err := ReadAaltoFile(f)
			if err != nil {
				t.Fatal(err)
			}
			windows = append(windows, Windows(p.Keystrokes(), 50)...)
		}
	}
	var ex TimingExtractor
	var tm Timings
	for i, w := range windows {
		err := ex.Extract(&tm, w)
		summary, events, ok := referenceTimings(w)
		if ok != (err == nil) {
			t.Fatalf("window %d: Extract says %v, the reference ok = %v", i, err, ok)
		}
		for j, v := range summary {
			if math.Float64bits(v) != math.Float64bits(tm.Summary[j]) {
				t.Fatalf("window %d: summary entry %d (%s) is %v, reference %v", i, j, summaryNames[j], tm.Summary[j], v)
			}
		}
		if !ok {
			continue
		}
		if !slices.Equal(events, tm.Events) {
			t.Fatalf("window %d: events differ from the reference", i)
		}
	}
}

// TestKeySorterSortsLikeSlicesSort checks the sorter of table keys against slices.Sort on
// series of every length it takes, with many repeats and keys across the whole table, with and
// without room past the series for its copies, and that it leaves its arrays clean for the next
// series.
func TestKeySorterSortsLikeSlicesSort(t *testing.T) {
	var ex TimingExtractor
	ex.init()
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n <= maxKeyedSort; n++ {
		for _, span := range []int{1, 3, 64, 700, gapTabLen} {
			for _, room := range []int{0, sortSlack - 1, sortSlack} {
				keys := make([]uint16, n)
				xs := make([]float64, n, n+room)
				for i := range keys {
					keys[i] = uint16(rng.IntN(span))
					xs[i] = ex.gapTab[keys[i]]
				}
				want := slices.Clone(xs)
				slices.Sort(want)
				ex.sorter.sort(xs, keys, ex.gapTab)
				if !slices.Equal(xs, want) {
					t.Fatalf("%d keys below %d, room for %d more: sorted %v, want %v", n, span, room, xs, want)
				}
			}
		}
	}
	if ex.sorter.present != [len(ex.sorter.present)]uint64{} || ex.sorter.count != [len(ex.sorter.count)]uint8{} {
		t.Fatal("the sorter's arrays are not clean after sorting")
	}
}
