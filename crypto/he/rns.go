package he

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/ring"
)

// Polynomials modulo Q = q0 q1 are held as lattigo holds them, in RNS form: the residues of
// every coefficient modulo each prime. Everything the package stores or serialises uses one
// flat layout of levels*N coefficients, "level-major": the N residues modulo q0, then the N
// residues modulo q1 (lattigo's Coeffs[0] then Coeffs[1]). Every residue is reduced modulo
// its own prime; decoders check it.

// polyLen is the number of uint64 residues of one polynomial in the flat layout.
func (p Params) polyLen() int { return levels * p.N() }

// polyBytes is the serialised size of one polynomial.
func (p Params) polyBytes() int { return 8 * p.polyLen() }

// flatten returns a copy of poly's residues in the flat layout.
func flatten(poly ring.Poly) []uint64 {
	out := make([]uint64, 0, len(poly.Coeffs)*poly.N())
	for _, c := range poly.Coeffs {
		out = append(out, c...)
	}
	return out
}

// unflatten copies flat, in the flat layout, into poly, which has the same number of levels.
func unflatten(poly ring.Poly, flat []uint64) {
	n := poly.N()
	for l, c := range poly.Coeffs {
		copy(c, flat[l*n:(l+1)*n])
	}
}

// appendPoly appends poly's residues, little-endian, in the flat layout.
func appendPoly(dst []byte, poly ring.Poly) []byte {
	for _, c := range poly.Coeffs {
		dst = appendCoeffs(dst, c)
	}
	return dst
}

// readPoly sets poly from the little-endian flat layout in b.
func readPoly(poly ring.Poly, b []byte) {
	n := poly.N()
	for l, c := range poly.Coeffs {
		readCoeffs(c, b[8*l*n:])
	}
}

// erase zeroes every residue of poly; callers use it on secret key material.
func erase(poly ring.Poly) {
	for _, c := range poly.Coeffs {
		clear(c)
	}
}

// split returns the per-prime slices of one flat polynomial, sharing its memory.
func split(flat []uint64, n int) [][]uint64 {
	out := make([][]uint64, len(flat)/n)
	for l := range out {
		out[l] = flat[l*n : (l+1)*n]
	}
	return out
}

// firstUnreduced returns the index of the first little-endian residue in b (whole
// polynomials in the flat layout) that is not below its prime, or -1.
func firstUnreduced(p Params, b []byte) int {
	n := p.N()
	for start := 0; start < len(b)/8; start += n {
		q := p.q[(start/n)%levels]
		end := min(start+n, len(b)/8)
		for i := start; i < end; i++ {
			if binary.LittleEndian.Uint64(b[8*i:]) >= q {
				return i
			}
		}
	}
	return -1
}

// unreducedAt is firstUnreduced for residues already in memory.
func unreducedAt(p Params, c []uint64) int {
	n := p.N()
	for i, x := range c {
		if x >= p.q[(i/n)%levels] {
			return i
		}
	}
	return -1
}

// addRNS adds the little-endian residues in src to dst (whole polynomials in the flat
// layout), each modulo its own prime.
func addRNS(p Params, dst []uint64, src []byte) {
	n := p.N()
	for start := 0; start < len(dst); start += n {
		addInto(dst[start:start+n], src[8*start:], p.q[(start/n)%levels])
	}
}

// crtConsts are the precomputed constants of the conversions between 128-bit integers and
// residues modulo q0 and q1. The modular multiplications by constants use Shoup's method
// (mulShoup) rather than hardware division: several times faster here, and its time does
// not depend on the operands.
type crtConsts struct {
	q0Inv          shoup         // q0^-1 mod q1
	qHi, qLo       uint64        // Q as 128 bits
	halfHi, halfLo uint64        // (Q-1)/2: integers above it stand for negative ones
	pow64          [levels]shoup // 2^64 mod q
	one            [levels]shoup // 1, to reduce a 64-bit value modulo q
}

// shoup is a constant w modulo q with its Shoup companion floor(w 2^64 / q).
type shoup struct{ w, wp uint64 }

func newShoup(w, q uint64) shoup {
	wp, _ := bits.Div64(w, 0, q) // w < q, so the quotient fits
	return shoup{w, wp}
}

// mulShoup returns a w mod q for any 64-bit a and q < 2^62: a w - floor(a wp / 2^64) q lies in
// [0, 2q) (Shoup, "NTL: a library for doing number theory"; Harvey, "Faster arithmetic for
// number-theoretic transforms", 2014), and one conditional subtraction finishes.
func mulShoup(a uint64, c shoup, q uint64) uint64 {
	hi, _ := bits.Mul64(a, c.wp)
	return condSub(a*c.w-hi*q, q)
}

func newCRT(q0, q1 uint64) crtConsts {
	var c crtConsts
	for l, q := range []uint64{q0, q1} {
		c.pow64[l] = newShoup(bits.Rem64(1, 0, q), q)
		c.one[l] = newShoup(1, q)
	}
	c.q0Inv = newShoup(invMod(q0%q1, q1), q1)
	c.qHi, c.qLo = bits.Mul64(q0, q1)
	// Q is odd: (Q-1)/2 is Q shifted right by one.
	c.halfHi, c.halfLo = c.qHi>>1, c.qLo>>1|c.qHi<<63
	return c
}

// invMod returns a^-1 mod the prime q, as a^(q-2).
func invMod(a, q uint64) uint64 {
	r, b := uint64(1), a
	for e := q - 2; e > 0; e >>= 1 {
		if e&1 == 1 {
			r = mulMod(r, b, q)
		}
		b = mulMod(b, b, q)
	}
	return r
}

func mulMod(a, b, q uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return bits.Rem64(hi, lo, q)
}

// encodeCoeff rounds x to the nearest integer c and returns the residues of c modulo q0 and
// q1. x must be finite with |x| < 2^127; the package's values are below MaxAbsUnits * 2^100
// = 2^104. Above 2^53, float64 values are integers already, so the rounding is exact.
func (p Params) encodeCoeff(x float64) (r0, r1 uint64) {
	c := math.Round(x)
	hi, lo := u128(math.Abs(c))
	r0, r1 = p.mod128(0, hi, lo), p.mod128(1, hi, lo)
	if c < 0 {
		r0, r1 = negMod(r0, p.q[0]), negMod(r1, p.q[1])
	}
	return r0, r1
}

// mod128 returns (hi 2^64 + lo) mod q_l.
func (p Params) mod128(l int, hi, lo uint64) uint64 {
	q := p.q[l]
	return addMod(mulShoup(hi, p.crt.pow64[l], q), mulShoup(lo, p.crt.one[l], q), q)
}

// u128 converts a non-negative integer-valued float64 below 2^127 to 128 bits, exactly.
func u128(a float64) (hi, lo uint64) {
	if a < 0x1p64 {
		return 0, uint64(a)
	}
	m, e := math.Frexp(a)             // a = m 2^e, m in [0.5, 1), e in [65, 127]
	mant := uint64(math.Ldexp(m, 64)) // exact: m has at most 53 significant bits
	shift := uint(e - 64)
	return mant >> (64 - shift), mant << shift
}

func negMod(r, q uint64) uint64 {
	if r == 0 {
		return 0
	}
	return q - r
}

// decodeCoeff returns the integer in [-(Q-1)/2, (Q-1)/2] whose residues are r0 and r1 (the
// centred representative, which is how signed values are stored modulo Q), rounded to
// float64. Garner's CRT: x = r0 + q0 k with k = (r1 - r0) q0^-1 mod q1, so 0 <= x < Q.
func (p Params) decodeCoeff(r0, r1 uint64) float64 {
	q0, q1, c := p.q[0], p.q[1], &p.crt
	// r0 mod q1 by one conditional subtraction: both primes lie within 2^43 below 2^60, so
	// r0 < q0 < 2 q1.
	d := condSub(r1+q1-condSub(r0, q1), q1)
	k := mulShoup(d, c.q0Inv, q1)
	hi, lo := bits.Mul64(q0, k)
	var carry uint64
	lo, carry = bits.Add64(lo, r0, 0)
	hi += carry
	if hi > c.halfHi || hi == c.halfHi && lo > c.halfLo {
		// x > (Q-1)/2 stands for x - Q < 0.
		var borrow uint64
		lo, borrow = bits.Sub64(c.qLo, lo, 0)
		hi = c.qHi - hi - borrow
		return -(float64(hi)*0x1p64 + float64(lo))
	}
	return float64(hi)*0x1p64 + float64(lo)
}
