package dp

import (
	"math"
	"math/bits"
)

// Exact discrete Gaussian sampling after Canonne, Kamath and Steinke 2020,
// "The Discrete Gaussian for Differential Privacy" (Algorithms 1-3). Every
// step uses integer arithmetic and exact uniform integers, so the output
// distribution is exactly N_Z(0, S): no floating point is involved.

// maxDGVariance bounds S so that 2·S·t² (t = floor(sqrt(S)) + 1) fits in
// 64 bits.
const maxDGVariance = 1<<31 - 1

// maxGeometric bounds loop counters; reaching the bound has probability
// below exp(-2^39).
const maxGeometric = 1 << 40

// dgSampler samples the discrete Gaussian N_Z(0, S) for an integer variance S.
type dgSampler struct {
	s   uint64 // variance σ² in grid units
	t   uint64 // Laplace scale floor(σ) + 1
	den uint64 // 2·S·t², the denominator of the acceptance exponent
}

func newDGSampler(s uint64) (dgSampler, error) {
	if s < 1 || s > maxDGVariance {
		return dgSampler{}, paramErr("discrete Gaussian variance", s, "in [1, 2^31)")
	}
	t := isqrt(s) + 1
	return dgSampler{s: s, t: t, den: 2 * s * t * t}, nil
}

// isqrt returns floor(sqrt(x)).
func isqrt(x uint64) uint64 {
	r := uint64(math.Sqrt(float64(x)))
	for r*r > x {
		r--
	}
	for (r+1)*(r+1) <= x {
		r++
	}
	return r
}

// bernoulliExpFrac returns true with probability exp(-num/den) for
// 0 <= num <= den (Algorithm 1 of CKS20): count K, the first index at which
// Bernoulli(γ/K) fails, and accept when K is odd. Bernoulli(γ/K) is drawn as
// Bernoulli(num/den) AND Bernoulli(1/K), which keeps every integer in 64 bits.
func (r *randBits) bernoulliExpFrac(num, den uint64) (bool, error) {
	for k := uint64(1); k < maxGeometric; k++ {
		a, err := r.bernoulliRatio(num, den)
		if err != nil {
			return false, err
		}
		if a {
			u, err := r.below(k)
			if err != nil {
				return false, err
			}
			a = u == 0
		}
		if !a {
			return k%2 == 1, nil
		}
	}
	return false, errUnreachable
}

// bernoulliExpNeg1 returns true with probability exp(-1).
func (r *randBits) bernoulliExpNeg1() (bool, error) { return r.bernoulliExpFrac(1, 1) }

// bernoulliExp returns true with probability exp(-(g + num/den)) where g is
// a whole number of nats and num <= den: g independent Bernoulli(exp(-1))
// draws, then one Bernoulli(exp(-num/den)).
func (r *randBits) bernoulliExp(g, num, den uint64) (bool, error) {
	for i := uint64(0); i < g; i++ {
		ok, err := r.bernoulliExpNeg1()
		if err != nil || !ok {
			return false, err
		}
		if i >= maxGeometric {
			return false, errUnreachable
		}
	}
	return r.bernoulliExpFrac(num, den)
}

// discreteLaplace samples P(x) ∝ exp(-|x|/t) over the integers (Algorithm 2
// of CKS20 with s = 1).
func (r *randBits) discreteLaplace(t uint64) (int64, error) {
	for {
		u, err := r.below(t)
		if err != nil {
			return 0, err
		}
		d, err := r.bernoulliExpFrac(u, t)
		if err != nil {
			return 0, err
		}
		if !d {
			continue
		}
		var v uint64
		for {
			a, err := r.bernoulliExpNeg1()
			if err != nil {
				return 0, err
			}
			if !a {
				break
			}
			if v++; v >= maxGeometric {
				return 0, errUnreachable
			}
		}
		x := u + t*v // t < 2^16 and v < 2^40: no overflow
		b, err := r.bits(1)
		if err != nil {
			return 0, err
		}
		if b == 1 && x == 0 {
			continue
		}
		if b == 1 {
			return -int64(x), nil
		}
		return int64(x), nil
	}
}

// sample draws from N_Z(0, S) (Algorithm 3 of CKS20): a discrete Laplace
// proposal Y with scale t, accepted with probability
// exp(-(|Y| - S/t)²/(2S)) = exp(-(t|Y| - S)² / (2 S t²)).
func (d dgSampler) sample(r *randBits) (int64, error) {
	for {
		y, err := r.discreteLaplace(d.t)
		if err != nil {
			return 0, err
		}
		abs := uint64(y)
		if y < 0 {
			abs = uint64(-y)
		}
		// a = |t·|Y| - S|, exact in 128 bits.
		hi, lo := bits.Mul64(d.t, abs)
		var a uint64
		switch {
		case hi == 0 && lo >= d.s:
			a = lo - d.s
		case hi == 0:
			a = d.s - lo
		default:
			// t·|Y| >= 2^64 needs |Y| >= 2^48 > 2^32·t, a Laplace tail
			// of probability below exp(-2^32).
			return 0, errUnreachable
		}
		nh, nl := bits.Mul64(a, a)
		if nh >= d.den {
			// The exponent a²/den is at least 2^64 nats, which needs a
			// Laplace tail of probability below exp(-2^32).
			return 0, errUnreachable
		}
		g, rem := bits.Div64(nh, nl, d.den)
		c, err := r.bernoulliExp(g, rem, d.den)
		if err != nil {
			return 0, err
		}
		if c {
			return y, nil
		}
	}
}
