package dp

import (
	"crypto/rand"
	"fmt"
	"io"
	"math"
)

// gridResolutionBits sets the noise grid: the grid spacing is a power of
// two between σ/2^15 and σ/2^14, so the noise in grid units has a standard
// deviation in [2^14, 2^15). Rounding to that grid moves a coordinate by
// less than σ/2^14, negligible against the noise itself, and keeps all the
// sampler's integers within 64 bits.
const gridResolutionBits = 15

// Noiser adds Gaussian noise of a fixed standard deviation to vectors, in a
// way that resists the floating-point attacks on naive Gaussian sampling
// (see the package documentation): each coordinate is rounded toward zero
// to a power-of-two grid and an exact discrete Gaussian multiple of the grid
// spacing is added. The output therefore lies on a grid that does not
// depend on the input, and its noise distribution is exact.
//
// A Noiser is not safe for concurrent use; give each goroutine its own.
type Noiser struct {
	sigma float64 // the effective standard deviation, >= the requested one
	exp   int     // grid spacing is 2^-exp
	dg    dgSampler
	rnd   *randBits
}

// NewNoiser returns a Noiser adding noise of standard deviation at least
// sigma, drawing randomness from src (crypto/rand.Reader when src is nil;
// any other source must be a cryptographically secure one in production).
func NewNoiser(sigma float64, src io.Reader) (*Noiser, error) {
	if !(sigma > 0) || math.IsInf(sigma, 1) || sigma < 0x1p-900 || sigma > 0x1p900 {
		return nil, paramErr("noise standard deviation sigma", sigma, "a finite number in [2^-900, 2^900]")
	}
	if src == nil {
		src = rand.Reader
	}
	// sigma = frac·2^e2 with frac in [0.5, 1); sigma·2^(15-e2) is in [2^14, 2^15).
	_, e2 := math.Frexp(sigma)
	exp := gridResolutionBits - e2
	sz := math.Ldexp(sigma, exp) // exact: scaling by a power of two
	// S >= sz² in exact arithmetic: the float square is within half an ulp
	// (< 2^-22 here) of the exact one, and +1 covers it. Never less noise.
	s := uint64(math.Ceil(sz*sz)) + 1
	dg, err := newDGSampler(s)
	if err != nil {
		return nil, err
	}
	return &Noiser{
		sigma: math.Ldexp(math.Sqrt(float64(s)), -exp),
		exp:   exp,
		dg:    dg,
		rnd:   newRandBits(src),
	}, nil
}

// Sigma returns the standard deviation of the noise the Noiser adds: at
// least the requested one, larger by a relative 2^-28 at most.
func (n *Noiser) Sigma() float64 { return n.sigma }

// Grid returns the spacing of the output grid.
func (n *Noiser) Grid() float64 { return math.Ldexp(1, -n.exp) }

// Add noises dst in place: every coordinate is rounded toward zero to the
// grid, which never increases its magnitude (so an L2 bound established by
// ClipL2 still holds), and then an independent discrete Gaussian multiple of
// the grid spacing is added.
//
// Coordinates must be finite and below 2^37·sigma in magnitude; otherwise
// Add returns an error before modifying dst. If the randomness source fails
// midway, Add returns its error and dst holds a partly noised vector that
// must not be released.
func (n *Noiser) Add(dst []float64) error {
	limit := math.Ldexp(1, 52-n.exp) // |x|·2^exp < 2^52
	for i, x := range dst {
		if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) >= limit {
			return fmt.Errorf("%w: coordinate %d is %v; it must be finite and below %g (2^37 sigma)", ErrInvalidParameter, i, x, limit)
		}
	}
	for i, x := range dst {
		k := int64(math.Trunc(math.Ldexp(x, n.exp))) // exact: |k| < 2^52
		y, err := n.dg.sample(n.rnd)
		if err != nil {
			return err
		}
		dst[i] = math.Ldexp(float64(k+y), -n.exp)
	}
	return nil
}

// AddGaussian adds noise of standard deviation at least sigma to dst in
// place, as a new Noiser(sigma, src) would. Use a Noiser to noise several
// vectors with the same sigma.
func AddGaussian(dst []float64, sigma float64, src io.Reader) error {
	n, err := NewNoiser(sigma, src)
	if err != nil {
		return err
	}
	return n.Add(dst)
}
