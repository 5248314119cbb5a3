package he

import (
	"encoding/binary"
	"fmt"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Dealing layout (little-endian): magic "VGHD", version 1, parameter digest (16), roster
// digest (32), dealer's point (8), public-key share (2N * 8, the flat RNS layout of rns.go),
// n (2), n * { length (4), sealed share }, then the ML-DSA-65 signature (fixed size) over
// everything before it.

// maxSealedBytes bounds one sealed share: the polynomial (2N residues of 8 bytes) plus the
// HPKE encapsulated key and tag, with room to spare.
func maxSealedBytes(p Params) int { return p.polyBytes() + 4096 }

func (d *Dealing) signedPart() []byte {
	out := make([]byte, 0, 64+8*len(d.PKShare)+len(d.Sealed)*(d.params.polyBytes()+1200))
	out = append(out, dealingMagic...)
	out = append(out, dealingVersion)
	out = append(out, d.params.digest[:]...)
	out = append(out, d.RosterDigest[:]...)
	out = binary.LittleEndian.AppendUint64(out, d.From)
	out = appendCoeffs(out, d.PKShare)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(d.Sealed)))
	for _, s := range d.Sealed {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(s)))
		out = append(out, s...)
	}
	return out
}

// MarshalBinary returns the canonical encoding of d.
func (d *Dealing) MarshalBinary() ([]byte, error) {
	if err := d.check(d.params, len(d.Sealed)); err != nil {
		return nil, err
	}
	return append(d.signedPart(), d.Signature...), nil
}

// ParseDealing decodes a dealing made under p, strictly. It does not verify the signature:
// Finish does, against the roster.
func ParseDealing(p Params, data []byte) (*Dealing, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if len(data) > MaxDealingBytes {
		return nil, fmt.Errorf("%w: dealing of %d bytes, the limit is %d", ErrMalformed, len(data), MaxDealingBytes)
	}
	r := reader{b: data, what: "dealing"}
	if string(r.take(4)) != dealingMagic || r.u8() != dealingVersion {
		return nil, fmt.Errorf("%w: not a version %d dealing", ErrMalformed, dealingVersion)
	}
	if dg := r.take(16); r.err == nil && string(dg) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: dealing made under parameters %x, want %s", ErrParams, dg[:8], p.ID())
	}
	d := &Dealing{params: p}
	copy(d.RosterDigest[:], r.take(32))
	d.From = r.u64()
	d.PKShare = r.coeffs(p)
	n := int(r.u16())
	if r.err == nil && (n < MinTrustees || n > MaxTrustees) {
		return nil, fmt.Errorf("%w: dealing for %d trustees, want %d to %d", ErrMalformed, n, MinTrustees, MaxTrustees)
	}
	for i := 0; i < n && r.err == nil; i++ {
		size := int(r.u32())
		if r.err == nil && size > maxSealedBytes(p) {
			return nil, fmt.Errorf("%w: sealed share %d of %d bytes", ErrMalformed, i, size)
		}
		d.Sealed = append(d.Sealed, clone(r.take(size)))
	}
	d.Signature = clone(r.take(mldsa65.SignatureSize))
	if err := r.finish(); err != nil {
		return nil, err
	}
	if err := d.check(p, n); err != nil {
		return nil, err
	}
	return d, nil
}

// check validates the shape of a dealing for a roster of n trustees.
func (d *Dealing) check(p Params, n int) error {
	if err := p.valid(); err != nil {
		return err
	}
	if d.params.digest != p.digest {
		return fmt.Errorf("%w: dealing under %s, want %s", ErrParams, d.params.ID(), p.ID())
	}
	if d.From == 0 || d.From > MaxPoint {
		return fmt.Errorf("%w: dealer's Shamir point %d", ErrMalformed, d.From)
	}
	if len(d.PKShare) != p.polyLen() {
		return fmt.Errorf("%w: public-key share of %d residues", ErrMalformed, len(d.PKShare))
	}
	if i := unreducedAt(p, d.PKShare); i >= 0 {
		return fmt.Errorf("%w: public-key share residue %d is not reduced modulo its prime", ErrMalformed, i)
	}
	if len(d.Sealed) != n || n < MinTrustees || n > MaxTrustees {
		return fmt.Errorf("%w: %d sealed shares for %d trustees", ErrMalformed, len(d.Sealed), n)
	}
	for i, s := range d.Sealed {
		if len(s) == 0 || len(s) > maxSealedBytes(p) {
			return fmt.Errorf("%w: sealed share %d of %d bytes", ErrMalformed, i, len(s))
		}
	}
	if len(d.Signature) != mldsa65.SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(d.Signature), mldsa65.SignatureSize)
	}
	return nil
}
