package dp_test

import (
	"errors"
	"math"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

// inclusionBySummation is InclusionRate by summing the binomial probabilities term by term.
func inclusionBySummation(k, n, m int) float64 {
	q := float64(k) / float64(n)
	pmf := func(n, j int) float64 {
		lg := func(x int) float64 { v, _ := math.Lgamma(float64(x + 1)); return v }
		return math.Exp(lg(n) - lg(j) - lg(n-j) + float64(j)*math.Log(q) + float64(n-j)*math.Log1p(-q))
	}
	atLeast := func(n, m int) float64 {
		var s float64
		for j := max(m, 0); j <= n; j++ {
			s += pmf(n, j)
		}
		return s
	}
	return q * atLeast(n-1, m-1) / atLeast(n, m)
}

func TestInclusionRate(t *testing.T) {
	for _, c := range []struct {
		expected, population, min int
		ratio                     float64 // to q, when known independently; 0: by summation only
	}{
		{10, 1000, 10, 1.23}, // a review's figure
		{10, 1000, 1, 0},     // only the empty draw is thrown away
		{1, 10, 1, 1.5353},   // 1/(1 - 0.9^10): a review's figure
		{10, 1000, 0, 1},     // no draw is thrown away
		{20, 20, 20, 1},      // q = 1: every device, every round
		{50, 200, 3, 1},      // m_min far below K: the redraw almost never happens
		{25, 100, 25, 0},     // the demo's K = m_min
		{5, 40, 9, 0},        // m_min above K: kept draws are the large ones
		{1000, 1000000, 900, 0},
	} {
		got, err := dp.InclusionRate(c.expected, c.population, c.min)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		q := float64(c.expected) / float64(c.population)
		want := c.ratio * q
		tol := 0.005 * q
		if c.ratio == 0 || c.min > 1 && c.ratio == 1 {
			want, tol = inclusionBySummation(c.expected, c.population, c.min), 1e-9*q
		}
		if math.Abs(got-want) > tol || got < q {
			t.Errorf("InclusionRate(K %d, N %d, m_min %d) = %.6g = %.5f q, want %.6g = %.5f q", c.expected, c.population, c.min, got, got/q, want, want/q)
		}
	}
	for _, c := range [][3]int{{0, 10, 1}, {11, 10, 1}, {5, 10, -1}, {5, 10, 11}, {1, 1000000, 1000}} {
		if _, err := dp.InclusionRate(c[0], c[1], c[2]); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("InclusionRate(%v) = %v, want ErrInvalidParameter", c, err)
		}
	}
}
