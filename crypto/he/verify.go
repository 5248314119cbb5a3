package he

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// A trustee does not decrypt a sum the coordinator made: it adds up the c1 polynomials of
// the round's device-signed updates itself (C1Sum) and shares the decryption of that
// (Decryptor.ShareC1). A decryption share h = s_i c1 + e depends only on c1, so a
// coordinator that can choose no c1 the devices did not sign cannot choose what is decrypted:
// the key-recovery "sum" c1 = 2^41, c0 = 0 cannot even be expressed. The coordinator keeps c0
// to itself and combines the shares with its own sum of c0 (Combine), which it must have made
// from the same updates, or the result is noise.

// C1Sum is a trustee's running sum of the c1 polynomials of one round's updates of dimension
// parameters under one key epoch. Memory is one c1 polynomial per ciphertext, whatever the
// number of updates. A C1Sum is not safe for concurrent use.
type C1Sum struct {
	params Params
	epoch  uint64
	dim    int
	k      int
	sum    []uint64 // k polynomials in the flat RNS layout
	count  int
}

// NewC1Sum returns an empty c1 sum for updates of dim parameters under key epoch epoch.
func NewC1Sum(p Params, epoch uint64, dim int) (*C1Sum, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if dim < 1 || dim > MaxDimension {
		return nil, fmt.Errorf("%w: dimension %d, want 1 to %d", ErrDimension, dim, MaxDimension)
	}
	k := p.Ciphertexts(dim)
	return &C1Sum{params: p, epoch: epoch, dim: dim, k: k, sum: make([]uint64, k*p.polyLen())}, nil
}

// Add adds one update's c1 polynomials (as UpdateParts returns them). It checks everything
// the blob decoder checks of them, the number of polynomials, their size and that every
// residue is reduced, before it adds anything, so a refused update leaves the sum unchanged.
func (s *C1Sum) Add(c1 [][]byte) error {
	if s.count >= MaxContributors {
		return fmt.Errorf("%w: already %d updates", ErrFull, s.count)
	}
	if len(c1) != s.k {
		return fmt.Errorf("%w: %d c1 polynomials, a %d-parameter update has %d", ErrDimension, len(c1), s.dim, s.k)
	}
	for j, poly := range c1 {
		if len(poly) != s.params.C1Bytes() {
			return fmt.Errorf("%w: c1 polynomial %d is %d bytes, want %d", ErrMalformed, j, len(poly), s.params.C1Bytes())
		}
		if i := firstUnreduced(s.params, poly); i >= 0 {
			return fmt.Errorf("%w: c1 polynomial %d: residue %d is not reduced", ErrMalformed, j, i)
		}
	}
	pl := s.params.polyLen()
	for j, poly := range c1 {
		addRNS(s.params, s.sum[j*pl:(j+1)*pl], poly)
	}
	s.count++
	return nil
}

// Merge adds o, a c1 sum of other updates of the same dimension under the same key epoch and
// parameters, as if each of its updates were added. A refused merge changes nothing.
func (s *C1Sum) Merge(o *C1Sum) error {
	switch {
	case o.params.ID() != s.params.ID() || o.epoch != s.epoch || o.dim != s.dim:
		return fmt.Errorf("%w: a c1 sum of dimension %d under epoch %d, this one is %d under %d", ErrDimension, o.dim, o.epoch, s.dim, s.epoch)
	case s.count+o.count > MaxContributors:
		return fmt.Errorf("%w: %d and %d updates", ErrFull, s.count, o.count)
	}
	pl := s.params.polyLen()
	for j := range s.k {
		addRNS(s.params, s.sum[j*pl:(j+1)*pl], o.polyBytes(j))
	}
	s.count += o.count
	return nil
}

// Count is the number of updates added.
func (s *C1Sum) Count() int { return s.count }

// Size is the memory the sum's polynomials take, in bytes.
func (s *C1Sum) Size() int { return 8 * len(s.sum) }

// Dimension is the number of parameters of the updates.
func (s *C1Sum) Dimension() int { return s.dim }

// Epoch is the key epoch of the updates.
func (s *C1Sum) Epoch() uint64 { return s.epoch }

// Digest is the SHA-256 of the sum's c1 polynomials with its epoch and dimension: what a
// trustee's commitment names, and what Sum.C1Digest of the coordinator's sealed sum of the
// same updates equals.
func (s *C1Sum) Digest() [32]byte {
	return c1Digest(s.epoch, s.dim, s.k, func(j int) []byte { return s.polyBytes(j) })
}

func (s *C1Sum) polyBytes(j int) []byte {
	pl := s.params.polyLen()
	out := make([]byte, 0, 8*pl)
	for _, c := range s.sum[j*pl : (j+1)*pl] {
		out = binary.LittleEndian.AppendUint64(out, c)
	}
	return out
}

// C1Digest is C1Sum.Digest of the sum's c1 polynomials: the coordinator compares it with the
// trustees' commitments before it combines their shares with its c0.
func (s *Sum) C1Digest() [32]byte {
	pb := s.params.polyBytes()
	return c1Digest(s.Epoch, s.Dimension, len(s.Ciphertexts), func(j int) []byte {
		return s.Ciphertexts[j][blobHeaderSize+pb : blobHeaderSize+2*pb]
	})
}

func c1Digest(epoch uint64, dim, k int, poly func(int) []byte) [32]byte {
	h := sha256.New()
	var buf []byte
	buf = append(buf, "vigil/he/c1-sum/v1"...)
	buf = binary.BigEndian.AppendUint64(buf, epoch)
	buf = binary.BigEndian.AppendUint64(buf, uint64(dim))
	buf = binary.BigEndian.AppendUint64(buf, uint64(k))
	h.Write(buf)
	for j := range k {
		h.Write(poly(j))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// MarshalBinary encodes the sum (a trustee keeps it in its journal between committing to a
// round and decrypting it). Layout (little-endian): magic "VGC1", version 1, parameter digest
// (16), epoch (8), dimension (8), count (4), then the k polynomials in the flat layout.
func (s *C1Sum) MarshalBinary() ([]byte, error) {
	out := make([]byte, 0, c1HeaderSize+8*len(s.sum))
	out = append(out, c1Magic...)
	out = append(out, c1Version)
	out = append(out, s.params.digest[:]...)
	out = binary.LittleEndian.AppendUint64(out, s.epoch)
	out = binary.LittleEndian.AppendUint64(out, uint64(s.dim))
	out = binary.LittleEndian.AppendUint32(out, uint32(s.count))
	for _, c := range s.sum {
		out = binary.LittleEndian.AppendUint64(out, c)
	}
	return out, nil
}

const (
	c1Magic      = "VGC1"
	c1Version    = 1
	c1HeaderSize = 4 + 1 + 16 + 8 + 8 + 4
)

// ParseC1Sum decodes what MarshalBinary encoded, under p, checking every field.
func ParseC1Sum(p Params, data []byte) (*C1Sum, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if len(data) < c1HeaderSize || string(data[:4]) != c1Magic || data[4] != c1Version {
		return nil, fmt.Errorf("%w: not a version %d c1 sum", ErrMalformed, c1Version)
	}
	if string(data[5:21]) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: c1 sum made under other parameters than %s", ErrParams, p.ID())
	}
	epoch := binary.LittleEndian.Uint64(data[21:])
	dim := binary.LittleEndian.Uint64(data[29:])
	count := binary.LittleEndian.Uint32(data[37:])
	if dim < 1 || dim > MaxDimension || count > MaxContributors {
		return nil, fmt.Errorf("%w: c1 sum of dimension %d and %d updates", ErrMalformed, dim, count)
	}
	s, err := NewC1Sum(p, epoch, int(dim))
	if err != nil {
		return nil, err
	}
	body := data[c1HeaderSize:]
	if len(body) != 8*len(s.sum) {
		return nil, fmt.Errorf("%w: c1 sum body of %d bytes, want %d", ErrMalformed, len(body), 8*len(s.sum))
	}
	if i := firstUnreduced(p, body); i >= 0 {
		return nil, fmt.Errorf("%w: c1 sum residue %d is not reduced", ErrMalformed, i)
	}
	readCoeffs(s.sum, body)
	s.count = int(count)
	return s, nil
}

// ShareC1 returns this trustee's decryption shares of the sum whose c1 polynomials are c1,
// as the sum of round with c1.Count() contributors (the shares are bound to that, see
// SumBinding), for the active set active: exactly what Share returns for the coordinator's
// sealed sum of the same updates, through the same code and with the same flooding noise. It
// never reads a c0, so whatever c0 the coordinator holds cannot change what is shared.
func (d *Decryptor) ShareC1(c1 *C1Sum, round uint64, active []uint64) ([][]byte, error) {
	if c1 == nil || c1.count == 0 {
		return nil, fmt.Errorf("he: ShareC1: empty sum")
	}
	if c1.params.digest != d.params.digest {
		return nil, fmt.Errorf("%w: c1 sum under %s, share under %s", ErrParams, c1.params.ID(), d.params.ID())
	}
	p := c1.params
	n, pl := p.N(), p.polyLen()
	s := &Sum{Epoch: c1.epoch, Round: round, Contributors: c1.count, Dimension: c1.dim, params: p}
	zero := split(make([]uint64, pl), n)
	b := s.Binding()
	for j := range c1.k {
		h := blobHeader{kind: kindSum, epoch: c1.epoch, binding: b, index: uint32(j), count: uint32(c1.k), dim: uint64(c1.dim)}
		blob, err := appendBlob(make([]byte, 0, blobSize(p, 2)), p, h, zero, split(c1.sum[j*pl:(j+1)*pl], n))
		if err != nil {
			return nil, err
		}
		s.Ciphertexts = append(s.Ciphertexts, blob)
	}
	return d.Share(s, active)
}
