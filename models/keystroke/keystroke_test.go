package keystroke

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const aaltoDir = "../../../shared/datasets/aalto-keystrokes"

func TestReadAaltoCopesWithBadRows(t *testing.T) {
	in := strings.Join([]string{
		"PARTICIPANT_ID\tTEST_SECTION_ID\tSENTENCE\tUSER_INPUT\tKEYSTROKE_ID\tPRESS_TIME\tRELEASE_TIME\tLETTER\tKEYCODE",
		"7\t1\tHi there\tHi there\t1\t1000\t1100\tH\t72",
		"7\t1\tHi\tthere\twith\ttabs\tHi there\t2\t1200\t1290\ti\t73", // stray tabs in free text
		"7\t1\tHi there\tHi there\t3\t1300\t1380\t\t\t9",              // the letter is a tab
		"7\t1\tHi there\tHi there\t4\t1250\t1300\tx\t88",              // press earlier than the last
		"7\t1\tHi there\tHi there\t5\tabc\t1300\tx\t88",               // not a number
		"7\t1\tHi there\tHi there\t6\t1400\t1350\tx\t88",              // release before press
		"7\t1\tHi there\tHi there\t7\t1500\t1600\tx\t99999",           // absurd key code
		"8\t1\tHi there\tHi there\t8\t1600\t1700\tx\t88",              // someone else
		"short\trow",
		"7\t2\tBye\tBye\t9\t5000\t5100\tB\t66",
	}, "\n")
	p, st, err := ReadAalto(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "7" || len(p.Sessions) != 2 {
		t.Fatalf("got participant %q with %d sessions, want 7 with 2", p.ID, len(p.Sessions))
	}
	want := map[string]int{DropNonMonotonic: 1, DropMalformed: 2, DropBadKey: 1, DropOtherPerson: 1}
	for reason, n := range want {
		if st.Dropped[reason] != n {
			t.Errorf("dropped %q = %d, want %d (all: %v)", reason, st.Dropped[reason], n, st.Dropped)
		}
	}
	if st.Rows != 10 || st.Kept != 5 {
		t.Errorf("rows %d kept %d, want 10 and 5", st.Rows, st.Kept)
	}
	s := p.Sessions[0]
	if s[0].Press != 0 || s[1].Press != 200*time.Millisecond || s[2].Code != 9 {
		t.Errorf("first session parsed wrongly: %+v", s)
	}
	if s[3].Release != 0 {
		t.Errorf("release before press should be treated as missing, got %v", s[3].Release)
	}
}

// summaryOf returns the summary of a window, failing the test if the window is unusable.
func summaryOf(t *testing.T, ex *TimingExtractor, w []Keystroke) []float64 {
	t.Helper()
	var tm Timings
	if err := ex.Extract(&tm, w); err != nil {
		t.Fatal(err)
	}
	return append([]float64(nil), tm.Summary...)
}

func TestSparseWindow(t *testing.T) {
	var ex TimingExtractor
	var tm Timings
	if err := ex.Extract(&tm, NewTypist(1).Type(3)); !errors.Is(err, ErrWindowTooSparse) {
		t.Errorf("3 keystrokes: %v, want ErrWindowTooSparse", err)
	}
}

// TestTypistsDiffer checks that the synthetic users are distinguishable by their window
// summaries and stable over time, which the demo relies on.
func TestTypistsDiffer(t *testing.T) {
	var ex TimingExtractor
	mean := func(seed uint64, offset int) []float64 {
		ty := NewTypist(seed)
		ty.Type(offset)
		// Entries a window cannot support are NaN (missing); average what is there.
		var sum, n []float64
		for w := 0; w < 20; w++ {
			f := summaryOf(t, &ex, ty.Type(50))
			if sum == nil {
				sum, n = make([]float64, len(f)), make([]float64, len(f))
			}
			for i, v := range f {
				if !math.IsNaN(v) {
					sum[i] += v
					n[i]++
				}
			}
		}
		for i := range sum {
			sum[i] /= n[i]
		}
		return sum
	}
	dist := func(a, b []float64) float64 {
		var d float64
		for i := range a {
			if !math.IsNaN(a[i]) && !math.IsNaN(b[i]) {
				d += (a[i] - b[i]) * (a[i] - b[i])
			}
		}
		return math.Sqrt(d)
	}
	self := dist(mean(1, 0), mean(1, 5000))
	other := dist(mean(1, 0), mean(2, 0))
	if !(other > 2*self) {
		t.Fatalf("typists too alike: distance to self %.3f, to another %.3f", self, other)
	}
}

func TestReadAaltoRealFiles(t *testing.T) {
	files, err := AaltoFiles(aaltoDir)
	if err != nil {
		t.Skipf("Aalto keystroke data not available at %s: %v", aaltoDir, err)
	}
	var st ReadStats
	var ex TimingExtractor
	var tm Timings
	windows := 0
	for _, path := range files[:20] {
		p, s, err := ReadAaltoFile(path)
		if err != nil {
			t.Fatal(err)
		}
		st.Add(s)
		if want := strings.TrimSuffix(filepath.Base(path), "_keystrokes.txt.gz"); p.ID != want {
			t.Errorf("%s: participant %q", path, p.ID)
		}
		for _, w := range Windows(p.Keystrokes(), 50) {
			if err := ex.Extract(&tm, w); err == nil {
				windows++
			}
		}
	}
	if st.Kept < 10000 || windows < 150 {
		t.Fatalf("20 participants gave %d keystrokes and %d windows; expected about 13,000 and 260", st.Kept, windows)
	}
	t.Logf("20 participants: %d rows, %d kept, dropped %v, %d windows of 50", st.Rows, st.Kept, st.Dropped, windows)
}

func TestAaltoFilesMissingDir(t *testing.T) {
	if _, err := AaltoFiles(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
}
