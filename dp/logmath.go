package dp

import (
	"math"
	"sync"
)

// Log-space arithmetic for the RDP series. Every quantity here is the
// natural logarithm of a non-negative number; zero is math.Inf(-1).

// logAdd returns log(exp(x) + exp(y)) without overflow.
func logAdd(x, y float64) float64 {
	a, b := math.Min(x, y), math.Max(x, y)
	if math.IsInf(a, -1) {
		return b
	}
	return math.Log1p(math.Exp(a-b)) + b
}

// logSub returns log(exp(x) - exp(y)). It reports ok = false when the
// difference would be negative, which for the RDP series means that
// cancellation has destroyed the partial sum.
func logSub(x, y float64) (v float64, ok bool) {
	switch {
	case x < y:
		return math.NaN(), false
	case math.IsInf(y, -1):
		return x, true
	case x == y:
		return math.Inf(-1), true
	case x-y > 700:
		// exp(y) is below the last bit of exp(x); expm1 would overflow.
		return x, true
	}
	return math.Log(math.Expm1(x-y)) + y, true
}

// logErfcAsymptoticFrom is where logErfc switches from math.Erfc to the
// asymptotic series. math.Erfc keeps full relative accuracy up to about
// x = 26 and underflows to zero at x ≈ 27.3; at 25 the asymptotic series
// below is already accurate to the last bit (its first omitted term is
// below 1e-20).
const logErfcAsymptoticFrom = 25

// logErfc returns log(erfc(x)) with full relative accuracy for all x,
// including x far beyond the point where erfc(x) underflows.
//
// For large x it uses erfc(x) = exp(-x²)/(x√π) · S(x) with the asymptotic
// series S(x) = 1 + Σ_{k≥1} (-1)^k (2k-1)!! / (2x²)^k, summed while its
// terms decrease and stay above the float64 resolution.
func logErfc(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return math.NaN()
	case x < logErfcAsymptoticFrom:
		return math.Log(math.Erfc(x))
	case math.IsInf(x, 1):
		return math.Inf(-1)
	}
	inv := 1 / (2 * x * x)
	sum, term := 1.0, 1.0
	for k := 1; k < 60; k++ {
		next := -term * float64(2*k-1) * inv
		if math.Abs(next) >= math.Abs(term) || math.Abs(next) < 1e-20 {
			break
		}
		term = next
		sum += term
	}
	return -x*x - math.Log(x) - 0.5*math.Log(math.Pi) + math.Log(sum)
}

// logFactorials is the immutable table log(k!) = Lgamma(k+1) for
// k = 0..MaxOrder, built once on first use.
var logFactorials = sync.OnceValue(func() []float64 {
	t := make([]float64, MaxOrder+1)
	for k := range t {
		t[k], _ = math.Lgamma(float64(k) + 1)
	}
	return t
})

// logFactorial returns log(k!) for k >= 0.
func logFactorial(table []float64, k int) float64 {
	if k < len(table) {
		return table[k]
	}
	v, _ := math.Lgamma(float64(k) + 1)
	return v
}

// logAbsBinom returns log|C(n, k)| = log|Γ(n+1)/(Γ(k+1)Γ(n-k+1))| for real n
// and integer k ≥ 0, given lgammaN1 = log|Γ(n+1)| (n - k + 1 is never a
// non-positive integer for the fractional orders it is used with).
func logAbsBinom(table []float64, lgammaN1, n float64, k int) float64 {
	lnk, _ := math.Lgamma(n - float64(k) + 1)
	return lgammaN1 - logFactorial(table, k) - lnk
}
