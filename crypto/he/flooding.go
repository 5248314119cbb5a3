package he

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/ring"
)

// Flooding noise (noise smudging) for decryption shares.
//
// Each trustee adds to every coefficient of its decryption share an integer drawn uniformly
// from the M = 2^76 - 1 integers of [-(2^75 - 1), 2^75 - 1]. Uniform rather than Gaussian
// because the smudging lemma is stated for it (Asharov, Jain, López-Alt, Tromer,
// Vaikuntanathan, Wichs, "Multiparty computation with low communication, computation and
// interaction via threshold FHE", Eurocrypt 2012, Lemma 2.1) and because it can be sampled
// exactly from random bits, with no floating point and no tail cut: for an integer e with
// |e| <= B and U uniform on M consecutive integers, the statistical distance between U and
// e + U is exactly |e| / M <= B / M. See the package documentation for B and the resulting
// 2^-40.
//
// Sampling: take 76 bits r from crypto/rand, reject r = 2^76 - 1 (probability 2^-76; the
// rejection reveals nothing about the accepted sample) and return r - (2^75 - 1): every value
// is equally likely. The residues of r modulo each prime q are computed without division or
// data-dependent branches: with r = h 2^60 + l (h < 2^16, l < 2^60) and delta = 2^60 - q
// (below 2^17 for our primes), r = h delta + l (mod q), and h delta + l < 2^60 + 2^33 < 2q.
const floodBytes = 10 // random bytes per coefficient: 80 bits, of which 76 are used

// maxDelta bounds 2^60 - q for the moduli newParams accepts, so that the reduction above
// needs only one conditional subtraction: h delta + l < 2^16 * 2^43 + 2^60 < 2q.
const maxDelta = 1 << 43

// flooder adds flooding noise to polynomials. It holds a buffer and is not safe for
// concurrent use.
type flooder struct {
	q      [levels]uint64
	delta  [levels]uint64 // 2^60 - q
	negOff [levels]uint64 // -(2^75 - 1) mod q
	rand   io.Reader
	buf    []byte
}

func newFlooder(p Params) *flooder {
	f := &flooder{q: p.q, rand: rand.Reader, buf: make([]byte, floodBytes*p.N())}
	for l, q := range p.q {
		f.delta[l] = 1<<60 - q
		// 2^75 - 1 is (2^11 - 1) 2^64 + (2^64 - 1).
		f.negOff[l] = negMod(bits.Rem64(1<<(floodLogWidth-1-64)-1, 1<<64-1, q), q)
	}
	return f
}

// readAndAdd adds fresh flooding noise to every coefficient of poly, which is in the
// coefficient domain with every level present.
func (f *flooder) readAndAdd(poly ring.Poly) error {
	n := poly.N()
	buf := f.buf[:floodBytes*n]
	defer clear(buf)
	if _, err := io.ReadFull(f.rand, buf); err != nil {
		return fmt.Errorf("he: flooding noise: %w", err)
	}
	for i := range n {
		h, l, err := f.sample(buf[floodBytes*i:])
		if err != nil {
			return err
		}
		for lvl, c := range poly.Coeffs {
			q := f.q[lvl]
			r := condSub(l+h*f.delta[lvl], q) // r mod q
			c[i] = addMod(c[i], addMod(r, f.negOff[lvl], q), q)
		}
	}
	return nil
}

// sample reads r from the 10 bytes b (drawing afresh in the rare case of a rejection) and
// returns it as r = h 2^60 + l.
func (f *flooder) sample(b []byte) (h, l uint64, err error) {
	const top = 1<<(floodLogWidth-64) - 1 // the 12 high bits of r, all ones at 2^76 - 1
	lo := binary.LittleEndian.Uint64(b)
	hi := uint64(binary.LittleEndian.Uint16(b[8:])) & top
	for hi == top && lo == 1<<64-1 {
		var more [floodBytes]byte
		if _, err := io.ReadFull(f.rand, more[:]); err != nil {
			return 0, 0, fmt.Errorf("he: flooding noise: %w", err)
		}
		lo = binary.LittleEndian.Uint64(more[:])
		hi = uint64(binary.LittleEndian.Uint16(more[8:])) & top
		clear(more[:])
	}
	return hi<<4 | lo>>60, lo & (1<<60 - 1), nil
}

// condSub returns x - q if x >= q, else x, for x < 2q < 2^63, without a branch.
func condSub(x, q uint64) uint64 {
	t := x - q
	return t + q&uint64(int64(t)>>63)
}

// addMod returns a + b mod q for a, b <= q < 2^62, without a branch.
func addMod(a, b, q uint64) uint64 { return condSub(a+b, q) }
