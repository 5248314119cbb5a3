package keystroke

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

// TestTimingEvents checks the events of a hand-made window against values worked out by hand.
func TestTimingEvents(t *testing.T) {
	// T is held 100 ms and released 50 ms before H is pressed; E is pressed 80 ms after H while
	// H is still held (rollover); then a 2 s pause, a key whose release was never seen, and
	// three more keys.
	window := []Keystroke{
		{Code: 'T', Press: ms(0), Release: ms(100)},
		{Code: 'H', Press: ms(150), Release: ms(260)},
		{Code: 'E', Press: ms(230), Release: ms(300)},
		{Code: ' ', Press: ms(2300), Release: ms(2380)}, // after a 2 s pause: no digraph timing
		{Code: 'X', Press: ms(2500)},                    // release never seen
		{Code: 'A', Press: ms(2600), Release: ms(2650)},
		{Code: 'B', Press: ms(2700), Release: ms(2760)},
		{Code: 'C', Press: ms(2800), Release: ms(2850)},
	}
	var ex TimingExtractor
	var tm Timings
	if err := ex.Extract(&tm, window); err != nil {
		t.Fatal(err)
	}
	T, H, E, A := int('T'-'A'), int('H'-'A'), int('E'-'A'), 0
	pair := func(p, c int) int { return p*NumKeyClasses + c }
	want := map[int]float64{
		T:                                  math.Log(100),
		ddBase + pair(T, H):                math.Log(150),
		udBase + pair(T, H):                math.Asinh(50.0 / 20),
		hpBase + pair(T, H):                math.Log(110),
		hnBase + pair(T, H):                math.Log(100),
		ddBase + pair(H, E):                math.Log(80),
		udBase + pair(H, E):                math.Asinh(-30.0 / 20),
		ddBase + pair(classSpace, 'X'-'A'): math.Log(200),
		hpBase + pair('X'-'A', A):          math.Log(50),
	}
	got := map[int]float64{}
	for _, e := range tm.Events {
		if _, dup := got[e.Bucket]; !dup {
			got[e.Bucket] = e.Value
		}
	}
	for b, v := range want {
		if g, ok := got[b]; !ok || math.Abs(g-v) > 1e-12 {
			t.Errorf("%s: got %v (present %v), want %v", BucketName(b), g, ok, v)
		}
	}
	for _, e := range tm.Events {
		switch {
		case e.Bucket == ddBase+pair(E, classSpace) || e.Bucket == udBase+pair(E, classSpace):
			t.Errorf("the pause became a digraph timing: %s", BucketName(e.Bucket))
		case e.Bucket == 'X'-'A':
			t.Error("a key without release got a hold time")
		case e.Bucket == udBase+pair('X'-'A', A):
			t.Error("a key without release got a release-to-press gap")
		}
	}
	s := tm.Summary
	if s[sumBackspace] != 0 || s[sumShift] != 0 || !math.IsNaN(s[sumShiftHold]) {
		t.Errorf("backspace %v, shift %v, shift hold %v; want 0, 0, NaN", s[sumBackspace], s[sumShift], s[sumShiftHold])
	}
	// Seven press-to-press pairs, one of them a pause.
	if math.Abs(s[sumPause]-1.0/7) > 1e-12 {
		t.Errorf("pause rate %v, want 1/7", s[sumPause])
	}
	// Of the release-to-press gaps, only H to E overlaps.
	if math.Abs(s[sumOverlap]-1.0/float64(countUD(tm))) > 1e-12 {
		t.Errorf("overlap share %v", s[sumOverlap])
	}
	if s[sumInversion] != 0 {
		t.Errorf("H released after E: inversion share %v, want 0", s[sumInversion])
	}
}

func countUD(tm Timings) int {
	n := 0
	for _, e := range tm.Events {
		if e.Bucket >= udBase && e.Bucket < hpBase {
			n++
		}
	}
	return n
}

func TestTimingExtractorSparseAndAllocs(t *testing.T) {
	var ex TimingExtractor
	var tm Timings
	if err := ex.Extract(&tm, NewTypist(1).Type(4)); !errors.Is(err, ErrWindowTooSparse) {
		t.Errorf("4 keystrokes: %v", err)
	}
	// Every release missing: no hold times.
	ks := NewTypist(1).Type(50)
	for i := range ks {
		ks[i].Release = 0
	}
	if err := ex.Extract(&tm, ks); !errors.Is(err, ErrWindowTooSparse) {
		t.Errorf("no releases: %v", err)
	}
	// Press times going backwards: no intervals.
	for i := range ks {
		ks[i].Press = ms(1000 - i)
	}
	if err := ex.Extract(&tm, ks); !errors.Is(err, ErrWindowTooSparse) {
		t.Errorf("reversed presses: %v", err)
	}
	window := NewTypist(2).Type(50)
	if err := ex.Extract(&tm, window); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() { ex.Extract(&tm, window) }); n != 0 {
		t.Errorf("Extract allocates %v times per window", n)
	}
	// Unknown key codes break the digraph chain instead of failing.
	window[10].Code = -5
	if err := ex.Extract(&tm, window); err != nil {
		t.Errorf("unknown key code: %v", err)
	}
}

func TestLayoutDescribesEveryBucket(t *testing.T) {
	l := NewLayout()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if l.NumDense != NumSummaryFeatures || len(SummaryNames()) != NumSummaryFeatures {
		t.Fatalf("dense entries %d, summary names %d, want %d", l.NumDense, len(SummaryNames()), NumSummaryFeatures)
	}
	for b, name := range l.Names {
		if name == "" || strings.Contains(name, "unknown") {
			t.Fatalf("bucket %d has name %q", b, name)
		}
	}
	if got := BucketName(hpBase + ('T'-'A')*NumKeyClasses + ('H' - 'A')); got != "hold time of H after T" {
		t.Errorf("name %q", got)
	}
	if v, unit := l.Natural(ddBase, math.Log(120)); math.Abs(v-120) > 1e-9 || unit != "ms" {
		t.Errorf("natural press-to-press %v %s, want 120 ms", v, unit)
	}
}
