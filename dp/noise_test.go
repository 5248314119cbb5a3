package dp

import (
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// seeded returns a deterministic byte source, so the statistical tests below
// are reproducible: each either always passes or always fails.
func seeded(seed byte) io.Reader {
	return rand.NewChaCha8([32]byte{seed, 'v', 'i', 'g', 'i', 'l'})
}

// chiSquare compares counts of integer samples with pmf(x) over the range
// [-k, k], lumping both tails into one cell. It returns the statistic and
// the degrees of freedom.
func chiSquare(counts map[int64]int, n int, k int64, pmf func(int64) float64) (stat float64, df int) {
	tailP, tailC := 1.0, n
	for x := -k; x <= k; x++ {
		p := pmf(x)
		e := p * float64(n)
		c := counts[x]
		stat += (float64(c) - e) * (float64(c) - e) / e
		tailP -= p
		tailC -= c
		df++
	}
	if e := tailP * float64(n); e > 5 {
		stat += (float64(tailC) - e) * (float64(tailC) - e) / e
		df++
	}
	return stat, df - 1
}

// chiSquareLimit is a generous upper quantile (far beyond p = 1e-6) of the
// chi-square distribution with df degrees of freedom: mean df, variance 2df.
func chiSquareLimit(df int) float64 { return float64(df) + 8*math.Sqrt(2*float64(df)) + 20 }

// TestDiscreteGaussianExactPMF checks the sampler against the exact
// probability mass function exp(-x²/2S)/Σ_y exp(-y²/2S).
func TestDiscreteGaussianExactPMF(t *testing.T) {
	const n = 200000
	for _, s := range []uint64{1, 3, 10, 50} {
		dg, err := newDGSampler(s)
		if err != nil {
			t.Fatal(err)
		}
		norm := 0.0
		lim := int64(40*math.Sqrt(float64(s))) + 10
		for y := -lim; y <= lim; y++ {
			norm += math.Exp(-float64(y*y) / (2 * float64(s)))
		}
		pmf := func(x int64) float64 { return math.Exp(-float64(x*x)/(2*float64(s))) / norm }
		r := newRandBits(seeded(byte(s)))
		counts := map[int64]int{}
		for i := 0; i < n; i++ {
			y, err := dg.sample(r)
			if err != nil {
				t.Fatal(err)
			}
			counts[y]++
		}
		k := int64(3 * math.Sqrt(float64(s)))
		stat, df := chiSquare(counts, n, k, pmf)
		if stat > chiSquareLimit(df) {
			t.Errorf("S=%d: chi-square %.1f with %d degrees of freedom", s, stat, df)
		}
		t.Logf("S=%d: chi-square %.1f, %d degrees of freedom", s, stat, df)
	}
}

func TestDiscreteLaplaceExactPMF(t *testing.T) {
	const n = 200000
	for _, scale := range []uint64{1, 4} {
		r := newRandBits(seeded(100 + byte(scale)))
		counts := map[int64]int{}
		for i := 0; i < n; i++ {
			y, err := r.discreteLaplace(scale)
			if err != nil {
				t.Fatal(err)
			}
			counts[y]++
		}
		b := 1 / float64(scale)
		pmf := func(x int64) float64 { return math.Tanh(b/2) * math.Exp(-b*math.Abs(float64(x))) }
		stat, df := chiSquare(counts, n, int64(4*scale), pmf)
		if stat > chiSquareLimit(df) {
			t.Errorf("t=%d: chi-square %.1f with %d degrees of freedom", scale, stat, df)
		}
	}
}

func TestBernoulliExp(t *testing.T) {
	const n = 400000
	for _, tc := range []struct{ g, num, den uint64 }{{0, 0, 1}, {0, 1, 3}, {0, 1, 1}, {1, 1, 2}, {2, 0, 5}} {
		r := newRandBits(seeded(byte(7*tc.num + tc.den + 31*tc.g)))
		hits := 0
		for i := 0; i < n; i++ {
			ok, err := r.bernoulliExp(tc.g, tc.num, tc.den)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				hits++
			}
		}
		p := math.Exp(-(float64(tc.g) + float64(tc.num)/float64(tc.den)))
		sd := math.Sqrt(p * (1 - p) / n)
		if got := float64(hits) / n; math.Abs(got-p) > 5*sd+1e-12 {
			t.Errorf("exp(-(%d+%d/%d)) = %.5f, sampled %.5f", tc.g, tc.num, tc.den, p, got)
		}
	}
}

func TestNoiserGridAndMoments(t *testing.T) {
	const n = 200000
	for _, sigma := range []float64{0.3, 1e-7, 12345.678} {
		nz, err := NewNoiser(sigma, seeded(1))
		if err != nil {
			t.Fatal(err)
		}
		if s := nz.Sigma(); s < sigma || s > sigma*(1+0x1p-27) {
			t.Errorf("sigma %v: effective %v", sigma, s)
		}
		g := nz.Grid()
		if g < sigma/0x1p15 || g >= sigma/0x1p14 || math.Log2(g) != math.Trunc(math.Log2(g)) {
			t.Errorf("sigma %v: grid %v is not a power of two in [sigma/2^15, sigma/2^14)", sigma, g)
		}
		in := make([]float64, n)
		for i := range in {
			in[i] = sigma * (float64(i%201) - 100) / 37 // off-grid values of both signs
		}
		out := append([]float64(nil), in...)
		if err := nz.Add(out); err != nil {
			t.Fatal(err)
		}
		var sum, sumSq float64
		for i := range out {
			k := out[i] / g
			if k != math.Trunc(k) {
				t.Fatalf("sigma %v: output %v is off the grid %v", sigma, out[i], g)
			}
			noise := out[i] - math.Trunc(in[i]/g)*g // rounded toward zero, then noised
			sum += noise
			sumSq += noise * noise
		}
		mean, variance := sum/n, sumSq/n
		if math.Abs(mean) > 5*sigma/math.Sqrt(n) {
			t.Errorf("sigma %v: noise mean %v", sigma, mean)
		}
		// The variance of a sample variance is about 2σ⁴/n.
		if want := nz.Sigma() * nz.Sigma(); math.Abs(variance-want) > 5*want*math.Sqrt(2.0/n) {
			t.Errorf("sigma %v: noise variance %v, want %v", sigma, variance, want)
		}
	}
}

func TestNoiserRoundsTowardZero(t *testing.T) {
	nz, err := NewNoiser(1, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	g := nz.Grid()
	// Subtracting the noise recovers trunc(x/g)·g, whose magnitude never exceeds |x|.
	for _, x := range []float64{0.7 * g, -0.7 * g, 5.5 * g, -5.5 * g, 3 * g} {
		v := []float64{x}
		if err := nz.Add(v); err != nil {
			t.Fatal(err)
		}
		if k := math.Trunc(x / g); math.Abs(k*g) > math.Abs(x) {
			t.Errorf("rounding of %v grew its magnitude", x)
		}
	}
}

func TestNoiserDeterministicWithSeededSource(t *testing.T) {
	a, b := make([]float64, 1000), make([]float64, 1000)
	if err := AddGaussian(a, 0.5, seeded(9)); err != nil {
		t.Fatal(err)
	}
	if err := AddGaussian(b, 0.5, seeded(9)); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same source, different noise")
		}
	}
}

type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("entropy source broken")
	}
	n := min(len(p), f.after)
	for i := range p[:n] {
		p[i] = byte(i)
	}
	f.after -= n
	return n, nil
}

func TestNoiserErrors(t *testing.T) {
	for _, sigma := range []float64{0, -1, math.NaN(), math.Inf(1), 1e-300} {
		if _, err := NewNoiser(sigma, nil); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("sigma %v: err %v", sigma, err)
		}
	}
	nz, err := NewNoiser(1, seeded(3))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]float64{{1, math.NaN()}, {math.Inf(-1)}, {1e30}} {
		orig := append([]float64(nil), bad...)
		if err := nz.Add(bad); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%v: err %v", bad, err)
		}
		if !sameBits(bad, orig) {
			t.Errorf("%v: modified on error", orig)
		}
	}
	err = AddGaussian(make([]float64, 10000), 1, &failingReader{after: 5000})
	if err == nil || !strings.Contains(err.Error(), "entropy source broken") {
		t.Errorf("failing source: err %v", err)
	}
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}
