package dp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// randBits draws exact uniform integers from a byte source (crypto/rand in
// production). It buffers the source and hands out bits sparingly, because
// the discrete-Gaussian sampler mostly needs small uniform integers. It is
// not safe for concurrent use.
type randBits struct {
	src  io.Reader
	buf  [4096]byte
	off  int    // next unread byte of buf; len(buf) when empty
	pool uint64 // unused random bits, least significant first
	n    uint   // number of valid bits in pool
}

func newRandBits(src io.Reader) *randBits {
	r := &randBits{src: src}
	r.off = len(r.buf)
	return r
}

// uint64 returns 64 fresh uniform bits.
func (r *randBits) uint64() (uint64, error) {
	if r.off+8 > len(r.buf) {
		if _, err := io.ReadFull(r.src, r.buf[:]); err != nil {
			return 0, fmt.Errorf("dp: reading the noise source: %w", err)
		}
		r.off = 0
	}
	v := binary.LittleEndian.Uint64(r.buf[r.off:])
	r.off += 8
	return v, nil
}

// bits returns k uniform bits (1 <= k <= 64) in the low bits of the result.
func (r *randBits) bits(k uint) (uint64, error) {
	if k == 64 {
		return r.uint64()
	}
	if r.n < k {
		v, err := r.uint64()
		if err != nil {
			return 0, err
		}
		// Keep the old bits too: combine into k bits, drop the rest of the old pool.
		out := r.pool & (1<<r.n - 1)
		need := k - r.n
		out |= (v & (1<<need - 1)) << r.n
		r.pool = v >> need
		r.n = 64 - need
		return out, nil
	}
	out := r.pool & (1<<k - 1)
	r.pool >>= k
	r.n -= k
	return out, nil
}

// below returns a uniform integer in [0, n), n >= 1, by rejection sampling
// on the smallest number of bits that can hold n-1: exact, no modulo bias.
func (r *randBits) below(n uint64) (uint64, error) {
	if n <= 1 {
		return 0, nil
	}
	k := uint(bits.Len64(n - 1))
	for {
		v, err := r.bits(k)
		if err != nil {
			return 0, err
		}
		if v < n {
			return v, nil
		}
	}
}

// bernoulliRatio returns true with probability num/den exactly (num <= den, den >= 1).
func (r *randBits) bernoulliRatio(num, den uint64) (bool, error) {
	u, err := r.below(den)
	return u < num, err
}

// errUnreachable reports a branch whose probability is below exp(-2^32):
// the sampler refuses rather than return a sample from a slightly wrong
// distribution.
var errUnreachable = errors.New("dp: discrete Gaussian sampler reached a branch of probability below exp(-2^32)")
