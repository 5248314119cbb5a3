package he

import (
	"fmt"
	"slices"
)

// Combine adds the decryption shares of one active set of trustees to the sum and decodes
// the result: the sum of the updates, in the units of clipNorm, within
// Params.ErrorBound(sum.Contributors, len(key.Trustees), key.Threshold) clip norms of the exact
// sum. shares[i] is trustee i's answer (its shares of every ciphertext, in order); the order
// of the trustees does not matter.
//
// Combine checks everything before it adds anything: the sum against key (ErrParams, ErrEpoch,
// ErrBinding, ErrMalformed), exactly key.Threshold answers from distinct trustees of the
// epoch (ErrThreshold), and every share bound to this sum and this active set (ErrBinding).
func Combine(key *KeyEpoch, sum *Sum, shares [][][]byte, clipNorm float64) ([]float64, error) {
	if key == nil || sum == nil {
		return nil, fmt.Errorf("he: Combine: nil key epoch or sum")
	}
	if err := key.check(); err != nil {
		return nil, err
	}
	if err := checkClipNorm(clipNorm); err != nil {
		return nil, err
	}
	p := key.params
	s, err := ParseSum(p, key.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
	if err != nil {
		return nil, err
	}
	if len(shares) != key.Threshold {
		return nil, fmt.Errorf("%w: %d trustees answered, the threshold is %d", ErrThreshold, len(shares), key.Threshold)
	}
	k := len(s.Ciphertexts)
	points := make([]uint64, len(shares))
	bodies := make([][][]byte, len(shares))
	for i, set := range shares {
		if len(set) != k {
			return nil, fmt.Errorf("trustee answer %d: %w: %d shares for %d ciphertexts", i, ErrDimension, len(set), k)
		}
		for j, blob := range set {
			h, coeffs, err := parseBlob(p, blob)
			if err != nil {
				return nil, fmt.Errorf("trustee answer %d, share %d: %w", i, j, err)
			}
			switch {
			case h.kind != kindShare:
				return nil, fmt.Errorf("trustee answer %d, share %d: %w: a %v where a decryption share was expected", i, j, ErrMalformed, h.kind)
			case h.epoch != s.Epoch:
				return nil, fmt.Errorf("trustee answer %d, share %d: %w: key epoch %d, want %d", i, j, ErrEpoch, h.epoch, s.Epoch)
			case h.index != uint32(j) || int(h.count) != k || int(h.dim) != s.Dimension:
				return nil, fmt.Errorf("trustee answer %d, share %d: %w: share %d of %d for dimension %d, want %d of %d for %d",
					i, j, ErrMalformed, h.index, h.count, h.dim, j, k, s.Dimension)
			case j > 0 && h.point != points[i]:
				return nil, fmt.Errorf("trustee answer %d, share %d: %w: from Shamir point %d, share 0 from %d", i, j, ErrThreshold, h.point, points[i])
			}
			points[i] = h.point
			bodies[i] = append(bodies[i], coeffs)
		}
	}
	if err := checkActive(key.Trustees, key.Threshold, points); err != nil {
		return nil, err
	}
	want := shareBinding(s.Binding(), points)
	for i, set := range shares {
		for j, blob := range set {
			if Binding(blob[32:64]) != want {
				return nil, fmt.Errorf("trustee answer %d, share %d: %w: made for another sum or active set than %v", i, j, ErrBinding, slices.Sorted(slices.Values(points)))
			}
		}
	}

	n := p.N()
	out := make([]float64, s.Dimension)
	unit := clipNorm / p.scale
	acc := make([]uint64, p.polyLen())
	for j := range k {
		readCoeffs(acc, s.Ciphertexts[j][blobHeaderSize:blobHeaderSize+p.polyBytes()]) // c0
		for i := range bodies {
			addRNS(p, acc, bodies[i][j])
		}
		dst := out[j*n : min((j+1)*n, s.Dimension)]
		for i := range dst {
			dst[i] = p.decodeCoeff(acc[i], acc[n+i]) * unit
		}
	}
	return out, nil
}
