package he

import (
	"crypto/sha256"
	"fmt"
)

// Sum is a sealed encrypted sum: the ciphertexts of one round's sum of Contributors updates,
// bound to (Epoch, Round, Contributors). The coordinator gets it from Accumulator.Seal and
// sends it to the trustees; trustees get it from ParseSum.
type Sum struct {
	Epoch        uint64
	Round        uint64
	Contributors int
	Dimension    int
	// Ciphertexts are the serialised sum ciphertexts, in order.
	Ciphertexts [][]byte

	params Params
}

// ParseSum checks serialised sum ciphertexts that arrived claiming to be the sum of
// contributors updates in round of key epoch epoch: every ciphertext must decode under p and
// carry exactly that binding, in order, with one dimension throughout.
func ParseSum(p Params, epoch, round uint64, contributors int, cts [][]byte) (*Sum, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if contributors < 1 || contributors > MaxContributors {
		return nil, fmt.Errorf("%w: %d contributors, want 1 to %d", ErrMalformed, contributors, MaxContributors)
	}
	if len(cts) < 1 || len(cts) > maxBlobs(p) {
		return nil, fmt.Errorf("%w: %d ciphertexts, want 1 to %d", ErrDimension, len(cts), maxBlobs(p))
	}
	want := SumBinding(epoch, round, contributors)
	s := &Sum{Epoch: epoch, Round: round, Contributors: contributors, Ciphertexts: cts, params: p}
	for j, blob := range cts {
		h, _, err := parseBlob(p, blob)
		if err != nil {
			return nil, fmt.Errorf("sum ciphertext %d: %w", j, err)
		}
		switch {
		case h.kind != kindSum:
			return nil, fmt.Errorf("sum ciphertext %d: %w: a %v where a sum was expected", j, ErrMalformed, h.kind)
		case h.epoch != epoch:
			return nil, fmt.Errorf("sum ciphertext %d: %w: key epoch %d, want %d", j, ErrEpoch, h.epoch, epoch)
		case h.binding != want:
			return nil, fmt.Errorf("sum ciphertext %d: %w: not the sum of %d updates of round %d", j, ErrBinding, contributors, round)
		case int(h.count) != len(cts):
			return nil, fmt.Errorf("sum ciphertext %d: %w: one of %d ciphertexts, but %d arrived", j, ErrDimension, h.count, len(cts))
		case h.index != uint32(j):
			return nil, fmt.Errorf("sum ciphertext %d: %w: ciphertext %d in position %d", j, ErrMalformed, h.index, j)
		case j > 0 && int(h.dim) != s.Dimension:
			return nil, fmt.Errorf("sum ciphertext %d: %w: dimension %d, ciphertext 0 says %d", j, ErrDimension, h.dim, s.Dimension)
		}
		s.Dimension = int(h.dim)
	}
	return s, nil
}

// Fingerprint identifies the sum by its c1 polynomials, the part of a ciphertext a decryption
// share depends on: trustees remember the fingerprint of every sum they have decrypted and
// refuse to produce a second share for the same one, whatever round it is presented under.
//
// Fingerprint is defined for sums from Accumulator.Seal or ParseSum; for a Sum built by hand
// it hashes the whole ciphertexts instead.
func (s *Sum) Fingerprint() [32]byte {
	h := sha256.New()
	h.Write([]byte("vigil/he/sum-fingerprint/v1"))
	body := 0
	if s.params.valid() == nil {
		body = blobHeaderSize + s.params.polyBytes()
	}
	for _, blob := range s.Ciphertexts {
		if len(blob) >= body {
			h.Write(blob[body:])
		} else {
			h.Write(blob)
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Binding is the binding the sum's ciphertexts carry.
func (s *Sum) Binding() Binding { return SumBinding(s.Epoch, s.Round, s.Contributors) }

// polys returns c0 and c1 of ciphertext j in the flat RNS layout (rns.go); the sum was
// checked when it was made or parsed.
func (s *Sum) polys(j int) (c0, c1 []uint64) {
	pb := s.params.polyBytes()
	body := s.Ciphertexts[j][blobHeaderSize:]
	c0, c1 = make([]uint64, s.params.polyLen()), make([]uint64, s.params.polyLen())
	readCoeffs(c0, body[:pb])
	readCoeffs(c1, body[pb:])
	return c0, c1
}
