package he

import (
	"bytes"
	"math"
	"math/big"
	"testing"
)

// residues returns the residues of the integer x modulo each prime.
func residues(p Params, x *big.Int) (r0, r1 uint64) {
	m := new(big.Int)
	r0 = m.Mod(x, new(big.Int).SetUint64(p.q[0])).Uint64()
	r1 = m.Mod(x, new(big.Int).SetUint64(p.q[1])).Uint64()
	return r0, r1
}

// TestDecodeCoeff checks the CRT against math/big at the edges of [-(Q-1)/2, (Q-1)/2] and at
// random points, including the largest sums the limits allow.
func TestDecodeCoeff(t *testing.T) {
	p := DefaultParams()
	half := new(big.Int).Rsh(p.Q(), 1)
	one := big.NewInt(1)
	largest := new(big.Int).Lsh(big.NewInt(MaxContributors*MaxAbsUnits), logScale)
	xs := []*big.Int{
		big.NewInt(0), one, big.NewInt(-1), half, new(big.Int).Neg(half),
		new(big.Int).Sub(half, one), new(big.Int).Add(new(big.Int).Neg(half), one),
		largest, new(big.Int).Neg(largest), big.NewInt(1 << 62), new(big.Int).Lsh(one, 64),
	}
	rng := testRNG(t)
	for range 1000 {
		x := new(big.Int).Lsh(big.NewInt(rng.Int64()), uint(rng.IntN(56)))
		if rng.IntN(2) == 0 {
			x.Neg(x)
		}
		xs = append(xs, x)
	}
	for _, x := range xs {
		want, _ := new(big.Float).SetInt(x).Float64()
		if got := p.decodeCoeff(residues(p, x)); got != want && math.Abs(got-want) > math.Abs(want)*0x1p-52 {
			t.Errorf("decode(%v) = %v, want %v", x, got, want)
		}
	}
	// Just above (Q-1)/2 is the most negative value, -(Q-1)/2.
	r0, r1 := residues(p, new(big.Int).Add(half, one))
	want, _ := new(big.Float).SetInt(new(big.Int).Neg(half)).Float64()
	if got := p.decodeCoeff(r0, r1); math.Abs(got-want) > math.Abs(want)*0x1p-52 {
		t.Errorf("decode((Q+1)/2) = %v, want %v", got, want)
	}
}

// TestEncodeCoeff checks the encoding of floats up to the largest update value against
// math/big, and that decoding gives the rounded value back.
func TestEncodeCoeff(t *testing.T) {
	p := DefaultParams()
	rng := testRNG(t)
	limit := MaxAbsUnits * p.scale
	xs := []float64{0, 0.4, 0.5, -0.5, 1.5, -2.5, 1 << 52, 1<<63 - 1024, 1 << 63, 1 << 64, -(1 << 64), limit, -limit, limit / 3}
	for range 2000 {
		xs = append(xs, (rng.Float64()*2-1)*math.Ldexp(1, rng.IntN(105)))
	}
	for _, x := range xs {
		r := math.Round(x)
		exact, _ := new(big.Float).SetFloat64(r).Int(nil)
		w0, w1 := residues(p, exact)
		if g0, g1 := p.encodeCoeff(x); g0 != w0 || g1 != w1 {
			t.Fatalf("encode(%v) = (%d, %d), want (%d, %d)", x, g0, g1, w0, w1)
		}
		if got := p.decodeCoeff(w0, w1); got != r {
			t.Fatalf("decode(encode(%v)) = %v, want %v", x, got, r)
		}
	}
}

// TestFlooderExact feeds the flooding sampler chosen bits: the extremes of the range, the
// rejected value 2^76 - 1 (which must draw again), and bits above the 76th (ignored).
func TestFlooderExact(t *testing.T) {
	p := DefaultParams()
	n := p.N()
	in := make([]byte, floodBytes*n)
	put := func(i int, lo uint64, hi uint16) {
		b := in[floodBytes*i:]
		for k := range 8 {
			b[k] = byte(lo >> (8 * k))
		}
		b[8], b[9] = byte(hi), byte(hi>>8)
	}
	bigE := func(lo uint64, hi uint16) *big.Int { // r - (2^75 - 1)
		r := new(big.Int).Lsh(big.NewInt(int64(hi&0x0fff)), 64)
		r.Add(r, new(big.Int).SetUint64(lo))
		return r.Sub(r, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 75), big.NewInt(1)))
	}
	put(0, 0, 0)                       // -(2^75 - 1)
	put(1, 1<<64-2, 0x0fff)            // 2^76 - 2: 2^75 - 1
	put(2, 1<<64-1, 0x0fff)            // 2^76 - 1: rejected, replaced by the trailing bytes
	put(3, 1<<64-1, 0x7fff)            // bits above 76 ignored: rejected as well
	put(4, 0x0123456789abcdef, 0xf7ff) // 0x7ff 0123456789abcdef
	extra := []byte{5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	want := map[int]*big.Int{
		0: bigE(0, 0), 1: bigE(1<<64-2, 0x0fff), 2: bigE(5, 0), 3: bigE(7, 0),
		4: bigE(0x0123456789abcdef, 0x07ff), 5: bigE(0, 0),
	}
	f := newFlooder(p)
	f.rand = bytes.NewReader(append(in, extra...))
	poly := p.rlwe().RingQ().NewPoly()
	if err := f.readAndAdd(poly); err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		w0, w1 := residues(p, w)
		if poly.Coeffs[0][i] != w0 || poly.Coeffs[1][i] != w1 {
			t.Errorf("coefficient %d: (%d, %d), want %v = (%d, %d)", i, poly.Coeffs[0][i], poly.Coeffs[1][i], w, w0, w1)
		}
	}
	// Out of randomness: an error, not a panic or a short sample.
	f.rand = bytes.NewReader(in[:100])
	if err := f.readAndAdd(poly); err == nil {
		t.Error("flooding with too little randomness succeeded")
	}
}

// TestFlooderDistribution: with crypto/rand, every sample lies in [-(2^75 - 1), 2^75 - 1]
// with the same integer in both residues, and the mean and variance are those of the uniform
// distribution (0 and M^2 / 12).
func TestFlooderDistribution(t *testing.T) {
	p := DefaultParams()
	f := newFlooder(p)
	poly := p.rlwe().RingQ().NewPoly()
	if err := f.readAndAdd(poly); err != nil {
		t.Fatal(err)
	}
	limit := math.Ldexp(1, floodLogWidth-1)
	var sum, sum2 float64
	for i := range p.N() {
		e := p.decodeCoeff(poly.Coeffs[0][i], poly.Coeffs[1][i])
		if math.Abs(e) > limit {
			t.Fatalf("sample %d = %v, outside the flooding range", i, e)
		}
		sum += e / limit
		sum2 += (e / limit) * (e / limit)
	}
	n := float64(p.N())
	mean, variance := sum/n, sum2/n
	// In units of 2^75 the samples are uniform on (-1, 1): mean 0, variance 1/3, and the sample
	// mean's standard deviation is sqrt(1/3n) = 0.0064.
	if math.Abs(mean) > 6*math.Sqrt(1/(3*n)) || math.Abs(variance/(1.0/3)-1) > 0.05 {
		t.Errorf("flooding mean %.4f, variance %.4f (want 0 and 1/3, in units of 2^75)", mean, variance)
	}
}
