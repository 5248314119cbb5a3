package he

import (
	"crypto/sha256"
	"fmt"
)

// A device signs its update's statement (UpdateStatement) with the key of its enrolment
// record. The statement covers the update's binding (key epoch, round, device, nonce), the
// base version, the fewest updates the device's noise was sized for, and every byte of every
// ciphertext, through two digests per ciphertext: one of
// its header and c0 polynomial, one of its c1 polynomial. The split lets a trustee check the
// signature while receiving only c1, the one part of a ciphertext a decryption share depends
// on, which halves what the coordinator must send each trustee.

// UpdateContext is the ML-DSA context string of update signatures.
const UpdateContext = "vigil/he/update/v1"

// UpdateParts splits an update's serialised ciphertexts into what the statement covers: the
// SHA-256 of each ciphertext's header and c0, and each ciphertext's c1 polynomial (a slice of
// the ciphertext, not a copy). Ciphertexts are checked only for their size; Accumulator.Add
// checks the rest.
func UpdateParts(p Params, cts [][]byte) (heads [][32]byte, c1 [][]byte, err error) {
	if err := p.valid(); err != nil {
		return nil, nil, err
	}
	if len(cts) < 1 || len(cts) > maxBlobs(p) {
		return nil, nil, fmt.Errorf("%w: %d ciphertexts, want 1 to %d", ErrDimension, len(cts), maxBlobs(p))
	}
	size, poly := blobSize(p, 2), p.C1Bytes()
	heads, c1 = make([][32]byte, len(cts)), make([][]byte, len(cts))
	for j, ct := range cts {
		if len(ct) != size {
			return nil, nil, fmt.Errorf("%w: ciphertext %d is %d bytes, want %d", ErrMalformed, j, len(ct), size)
		}
		heads[j] = sha256.Sum256(ct[:size-poly])
		c1[j] = ct[size-poly:]
	}
	return heads, c1, nil
}

// C1Bytes is the size of one ciphertext's c1 polynomial as serialised.
func (p Params) C1Bytes() int { return p.polyBytes() }

// UpdateStatement is the digest a device signs for its update: bound by binding (see
// UpdateBinding) to key epoch, round, device and nonce, made from base version baseVersion,
// with ciphertext j's header-and-c0 digest heads[j] and c1 polynomial c1[j]. minSum is the
// task's m_min, the fewest updates whose sum the device's share of the noise was sized for
// (z·C/sqrt(m_min - t_dev)): trustees decrypt no sum of fewer. Without it in the signature, a
// coordinator could ask for a large m_min, so that each device adds little noise, and have a
// sum of a few updates decrypted.
func UpdateStatement(p Params, binding Binding, baseVersion uint64, minSum uint32, heads [][32]byte, c1 [][]byte) ([32]byte, error) {
	if len(heads) != len(c1) || len(heads) == 0 {
		return [32]byte{}, fmt.Errorf("%w: %d header digests for %d c1 polynomials", ErrMalformed, len(heads), len(c1))
	}
	h := newBindingHash("vigil/he/update-statement/v2")
	h.bytes(p.digest[:])
	h.bytes(binding[:])
	h.u64(baseVersion)
	h.u64(uint64(minSum))
	h.u64(uint64(len(heads)))
	for j := range heads {
		if len(c1[j]) != p.C1Bytes() {
			return [32]byte{}, fmt.Errorf("%w: c1 polynomial %d is %d bytes, want %d", ErrMalformed, j, len(c1[j]), p.C1Bytes())
		}
		d := sha256.Sum256(c1[j])
		h.bytes(heads[j][:])
		h.bytes(d[:])
	}
	return h.sum(), nil
}
