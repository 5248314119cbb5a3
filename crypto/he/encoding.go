package he

import (
	"encoding/binary"
	"fmt"
)

// reader decodes the fixed-layout documents of this package (key epochs, share files,
// ceremony messages). The first short read sticks in err, so a decoder can read every field
// and check once; finish also refuses trailing bytes, which keeps every format canonical.
type reader struct {
	b    []byte
	off  int
	what string
	err  error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%w: %s truncated at byte %d", ErrMalformed, r.what, r.off)
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u8() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

// coeffs reads one polynomial in the flat RNS layout (rns.go) and checks that each residue is
// reduced modulo its prime.
func (r *reader) coeffs(p Params) []uint64 {
	raw := r.take(p.polyBytes())
	if raw == nil {
		return nil
	}
	if i := firstUnreduced(p, raw); i >= 0 {
		r.err = fmt.Errorf("%w: %s residue %d is not reduced modulo its prime", ErrMalformed, r.what, i)
		return nil
	}
	out := make([]uint64, p.polyLen())
	readCoeffs(out, raw)
	return out
}

// finish reports the first error, or trailing bytes.
func (r *reader) finish() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.b) {
		return fmt.Errorf("%w: %s has %d trailing bytes", ErrMalformed, r.what, len(r.b)-r.off)
	}
	return nil
}

// appendCoeffs appends little-endian coefficients.
func appendCoeffs(dst []byte, c []uint64) []byte {
	for _, x := range c {
		dst = binary.LittleEndian.AppendUint64(dst, x)
	}
	return dst
}
