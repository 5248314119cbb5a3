package dp

import (
	"math"
	"testing"
)

// TestLogErfc compares logErfc with log(erfc(x)) evaluated by mpmath 1.3.0
// at 40 digits, across the switch to the asymptotic series (x = 25) and far
// beyond the underflow of math.Erfc (x ≈ 27.3).
func TestLogErfc(t *testing.T) {
	for _, tc := range []struct{ x, want float64 }{
		{-30, 0.69314718055994530942},
		{-5, 0.69314718055917657952},
		{-1, 0.61123231767807049464},
		{-0.1, 0.10657640058652249059},
		{0, 0},
		{0.1, -0.11930497373739560532},
		{0.5, -0.73501112983708440303},
		{1, -1.8496055099332482486},
		{2, -5.3649412646166375745},
		{5, -27.200889545537434422},
		{10, -102.87988902484488857},
		{20, -403.56934333410423496},
		{25, -628.79203917407168537},
		{26, -679.83119976319423026},
		{27, -732.86888650789741098},
		{28, -787.90520619455771228},
		{30, -903.97411711064387808},
		{50, -2504.4845878484513719},
		{100, -10005.177585122664333},
		{1000, -1000007.4801207219062},
		{1e5, -10000000012.085290408},
		{1e8, -10000000000000018.993},
	} {
		got := logErfc(tc.x)
		if d := math.Abs(got - tc.want); d > 4e-16*math.Max(1, math.Abs(tc.want)) {
			t.Errorf("logErfc(%g) = %.17g, want %.17g (diff %.2g)", tc.x, got, tc.want, d)
		}
	}
	if !math.IsInf(logErfc(math.Inf(1)), -1) || !math.IsNaN(logErfc(math.NaN())) {
		t.Error("logErfc(+Inf) must be -Inf and logErfc(NaN) NaN")
	}
	// Both branches agree where they meet.
	below := math.Log(math.Erfc(logErfcAsymptoticFrom))
	if d := math.Abs(below - logErfc(logErfcAsymptoticFrom)); d > 1e-15*math.Abs(below) {
		t.Errorf("branches differ by %g at the switch", d)
	}
}

func TestLogAddSub(t *testing.T) {
	inf := math.Inf(-1)
	if got := logAdd(inf, 2); got != 2 {
		t.Errorf("logAdd(-Inf, 2) = %v", got)
	}
	if got := logAdd(math.Log(3), math.Log(5)); math.Abs(got-math.Log(8)) > 1e-15 {
		t.Errorf("logAdd(log 3, log 5) = %v, want log 8", got)
	}
	if got, ok := logSub(math.Log(5), math.Log(3)); !ok || math.Abs(got-math.Log(2)) > 1e-15 {
		t.Errorf("logSub(log 5, log 3) = %v %v, want log 2", got, ok)
	}
	if _, ok := logSub(1, 2); ok {
		t.Error("logSub(1, 2) must fail: the result is negative")
	}
	if got, ok := logSub(3, 3); !ok || !math.IsInf(got, -1) {
		t.Errorf("logSub(3, 3) = %v %v, want -Inf", got, ok)
	}
	if got, ok := logSub(1000, 1); !ok || got != 1000 {
		t.Errorf("logSub(1000, 1) = %v %v, want 1000", got, ok)
	}
}

func TestLogFactorialTable(t *testing.T) {
	tab := logFactorials()
	for _, k := range []int{0, 1, 2, 10, 170, MaxOrder} {
		want, _ := math.Lgamma(float64(k) + 1)
		if tab[k] != want || logFactorial(tab, k) != want {
			t.Errorf("log %d! = %v, want %v", k, tab[k], want)
		}
	}
	want, _ := math.Lgamma(MaxOrder + 2)
	if got := logFactorial(tab, MaxOrder+1); got != want {
		t.Errorf("beyond the table: %v, want %v", got, want)
	}
}
