package he

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// Accumulator state layout, for a coordinator that keeps its open round on disk
// (little-endian): magic "VGHA", version 1, parameter digest (16), epoch (8), dimension (4),
// count (4), sealed (1), replay filter (2^20 bits), the sum (k ciphertexts of two polynomials
// in the flat RNS layout of rns.go, 2 * 2 * N residues each), and the
// SHA-256 of everything before (32).
const (
	accumulatorMagic   = "VGHA"
	accumulatorVersion = 1
)

// MarshalBinary encodes the accumulator's whole state: the running sum, the count, the replay
// filter and whether it was sealed. A coordinator saves it so that a restart resumes the round
// without losing or double-counting updates.
func (a *Accumulator) MarshalBinary() ([]byte, error) {
	if a.sum == nil {
		return nil, errChecker
	}
	out := make([]byte, 0, 64+8*len(a.seen.bits)+8*len(a.sum))
	out = append(out, accumulatorMagic...)
	out = append(out, accumulatorVersion)
	out = append(out, a.params.digest[:]...)
	out = binary.LittleEndian.AppendUint64(out, a.epoch)
	out = binary.LittleEndian.AppendUint32(out, uint32(a.dim))
	out = binary.LittleEndian.AppendUint32(out, uint32(a.count))
	if a.sealed {
		out = append(out, 1)
	} else {
		out = append(out, 0)
	}
	out = appendCoeffs(out, a.seen.bits)
	out = appendCoeffs(out, a.sum)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// ParseAccumulator decodes an accumulator saved by MarshalBinary under p, strictly.
func ParseAccumulator(p Params, data []byte) (*Accumulator, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if len(data) < sha256.Size {
		return nil, fmt.Errorf("%w: accumulator of %d bytes", ErrMalformed, len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:]) != 1 {
		return nil, fmt.Errorf("%w: accumulator checksum mismatch (file damaged?)", ErrMalformed)
	}
	r := reader{b: body, what: "accumulator"}
	if string(r.take(4)) != accumulatorMagic || r.u8() != accumulatorVersion {
		return nil, fmt.Errorf("%w: not a version %d accumulator", ErrMalformed, accumulatorVersion)
	}
	if d := r.take(16); r.err == nil && string(d) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: accumulator made under parameters %x, want %s", ErrParams, d[:8], p.ID())
	}
	epoch := r.u64()
	dim := int(r.u32())
	count := int(r.u32())
	sealed := r.u8()
	if r.err != nil {
		return nil, r.err
	}
	if sealed > 1 || count > MaxContributors {
		return nil, fmt.Errorf("%w: accumulator with sealed flag %d and count %d", ErrMalformed, sealed, count)
	}
	a, err := NewAccumulator(p, epoch, dim)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	a.count, a.sealed = count, sealed == 1
	bits := r.take(8 * len(a.seen.bits))
	raw := r.take(8 * len(a.sum))
	if err := r.finish(); err != nil {
		return nil, err
	}
	readCoeffs(a.seen.bits, bits)
	if i := firstUnreduced(p, raw); i >= 0 {
		return nil, fmt.Errorf("%w: accumulator residue %d is not reduced modulo its prime", ErrMalformed, i)
	}
	readCoeffs(a.sum, raw)
	return a, nil
}
