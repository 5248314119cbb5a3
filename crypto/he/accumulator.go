package he

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Accumulator is a round's running encrypted sum: the coordinator adds each device's
// encrypted update as it arrives and, at the deadline, seals the sum for the trustees.
//
// Memory is the sum itself, 32 bytes per model parameter (rounded up to whole ciphertexts),
// plus a fixed 128 KiB filter of the fingerprints of accepted updates for replay detection
// (see replayFilter); nothing grows with the number of devices. Add checks an update completely before touching the sum, so a
// rejected update leaves the sum and the count exactly as they were.
//
// An Accumulator is not safe for concurrent use.
type Accumulator struct {
	params Params
	epoch  uint64
	dim    int
	k      int
	sum    []uint64 // k ciphertexts, each c0 then c1, each polynomial in the flat RNS layout; nil in a checker
	count  int
	seen   *replayFilter
	sealed bool
}

// fingerprintCoeffs is how many leading residues (modulo q0) of each c1 the replay fingerprint
// covers. c1 = u a + e1 is uniform modulo Q, so 32 residues (about 1,900 bits) never repeat across
// honest encryptions; and an attacker who alters a replayed body anywhere evades a hash of all
// of it as easily as a hash of a prefix, so hashing more would only cost time.
const fingerprintCoeffs = 32

// NewAccumulator returns an empty sum of dim-parameter updates under key epoch epoch.
func NewAccumulator(p Params, epoch uint64, dim int) (*Accumulator, error) {
	return newAccumulator(p, epoch, dim, true)
}

func newAccumulator(p Params, epoch uint64, dim int, withSum bool) (*Accumulator, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if dim < 1 || dim > MaxDimension {
		return nil, fmt.Errorf("%w: dimension %d, want 1 to %d", ErrDimension, dim, MaxDimension)
	}
	a := &Accumulator{params: p, epoch: epoch, dim: dim, k: p.Ciphertexts(dim), seen: newReplayFilter()}
	if withSum {
		a.sum = make([]uint64, a.k*2*p.polyLen())
	}
	return a, nil
}

// NewChecker returns an accumulator that keeps no sum: Add checks and counts updates as a
// sum's would, replays included, without adding them, for a process that only vets updates a
// sum elsewhere will hold (a frontend storing updates for the round's leader). It holds the
// replay filter and not the 32 bytes per parameter, and cannot be sealed, merged or encoded.
func NewChecker(p Params, epoch uint64, dim int) (*Accumulator, error) {
	return newAccumulator(p, epoch, dim, false)
}

// Add adds one device's encrypted update, bound to b (see UpdateBinding). It refuses, with an
// error wrapping the matching sentinel and without changing anything: a sealed or full sum
// (ErrSealed, ErrFull), the wrong number of ciphertexts or dimension (ErrDimension), bytes that
// do not decode or ciphertexts out of order (ErrMalformed), another parameter set (ErrParams)
// or key epoch (ErrEpoch), another binding (ErrBinding), and a body already in the sum
// (ErrReplay).
func (a *Accumulator) Add(update [][]byte, b Binding) error {
	_, err := a.Admit(update, b)
	return err
}

// Admit is Add, returning the update's fingerprint (see Fingerprint): the one pass over the
// update for a caller that needs both.
func (a *Accumulator) Admit(update [][]byte, b Binding) ([32]byte, error) {
	if a.sealed {
		return [32]byte{}, ErrSealed
	}
	if a.count >= MaxContributors {
		return [32]byte{}, fmt.Errorf("%w: already %d updates", ErrFull, a.count)
	}
	if len(update) != a.k {
		return [32]byte{}, fmt.Errorf("%w: %d ciphertexts, a %d-parameter update takes %d", ErrDimension, len(update), a.dim, a.k)
	}
	fp := sha256.New()
	bodies := make([][]byte, 0, 16)
	for j, blob := range update {
		coeffs, err := a.checkBlob(j, blob, b)
		if err != nil {
			return [32]byte{}, err
		}
		c1 := a.params.polyBytes()
		fp.Write(coeffs[c1 : c1+8*fingerprintCoeffs])
		bodies = append(bodies, coeffs)
	}
	var key [32]byte
	fp.Sum(key[:0])
	if a.seen.contains(key) {
		return [32]byte{}, fmt.Errorf("%w: this update's ciphertexts are already in the sum", ErrReplay)
	}
	// Everything is checked: from here on nothing can fail.
	if a.sum != nil {
		block := 2 * a.params.polyLen()
		for j, body := range bodies {
			addRNS(a.params, a.sum[j*block:(j+1)*block], body)
		}
	}
	a.seen.add(key)
	a.count++
	return key, nil
}

// checkBlob checks ciphertext j of an update bound to b and returns its coefficients.
func (a *Accumulator) checkBlob(j int, blob []byte, b Binding) ([]byte, error) {
	h, coeffs, err := parseBlob(a.params, blob)
	if err != nil {
		return nil, fmt.Errorf("ciphertext %d: %w", j, err)
	}
	if err := a.checkHeader(h, j, b); err != nil {
		return nil, fmt.Errorf("ciphertext %d: %w", j, err)
	}
	return coeffs, nil
}

// Fingerprint returns the fingerprint the sum's replay check keys update on, checking it as
// Add would (except for replay): what another sum's Seen is asked.
func (a *Accumulator) Fingerprint(update [][]byte, b Binding) ([32]byte, error) {
	if len(update) != a.k {
		return [32]byte{}, fmt.Errorf("%w: %d ciphertexts, a %d-parameter update takes %d", ErrDimension, len(update), a.dim, a.k)
	}
	fp := sha256.New()
	for j, blob := range update {
		coeffs, err := a.checkBlob(j, blob, b)
		if err != nil {
			return [32]byte{}, err
		}
		c1 := a.params.polyBytes()
		fp.Write(coeffs[c1 : c1+8*fingerprintCoeffs])
	}
	var key [32]byte
	fp.Sum(key[:0])
	return key, nil
}

// Seen reports whether an update with fingerprint fp may be in the sum (never false for one
// that is).
func (a *Accumulator) Seen(fp [32]byte) bool { return a.seen.contains(fp) }

// Merge adds o, a sum of other updates of the same dimension under the same key epoch and
// parameters, as if each were added; o's fingerprints join the replay check. It does not check
// that the two sums share no update: the caller asks Seen of each of o's fingerprints first. A
// refused merge changes nothing.
func (a *Accumulator) Merge(o *Accumulator) error {
	switch {
	case a.sum == nil || o.sum == nil:
		return errChecker
	case a.sealed || o.sealed:
		return ErrSealed
	case o.params.digest != a.params.digest:
		return fmt.Errorf("%w: a sum under other parameters", ErrParams)
	case o.epoch != a.epoch:
		return fmt.Errorf("%w: a sum under key epoch %d, this one is under %d", ErrEpoch, o.epoch, a.epoch)
	case o.dim != a.dim:
		return fmt.Errorf("%w: a sum of %d parameters, this one has %d", ErrDimension, o.dim, a.dim)
	case a.count+o.count > MaxContributors:
		return fmt.Errorf("%w: %d and %d updates", ErrFull, a.count, o.count)
	}
	n := a.params.N()
	for start := 0; start < len(a.sum); start += n {
		q := a.params.q[(start/n)%levels]
		dst, src := a.sum[start:start+n], o.sum[start:start+n]
		for i := range dst {
			s := dst[i] + src[i]
			t := s - q
			dst[i] = t + q&uint64(int64(t)>>63)
		}
	}
	for i, w := range o.seen.bits {
		a.seen.bits[i] |= w
	}
	a.count += o.count
	return nil
}

func (a *Accumulator) checkHeader(h blobHeader, j int, b Binding) error {
	switch {
	case h.kind != kindUpdate:
		return fmt.Errorf("%w: a %v where a device update was expected", ErrMalformed, h.kind)
	case h.epoch != a.epoch:
		return fmt.Errorf("%w: encrypted under key epoch %d, the round uses %d", ErrEpoch, h.epoch, a.epoch)
	case h.dim != uint64(a.dim):
		return fmt.Errorf("%w: update of %d parameters, the model has %d", ErrDimension, h.dim, a.dim)
	case h.index != uint32(j):
		return fmt.Errorf("%w: ciphertext %d of the update arrived in position %d", ErrMalformed, h.index, j)
	case h.binding != b:
		return fmt.Errorf("%w: ciphertext bound to another round or device", ErrBinding)
	}
	return nil
}

// addInto adds the little-endian coefficients in src to dst modulo q, without branches on the
// data. Both operands are below q < 2^60, so the sum is below 2^61 and cannot wrap. addRNS
// applies it to each prime's residues.
func addInto(dst []uint64, src []byte, q uint64) {
	src = src[:8*len(dst)]
	for i := range dst {
		s := dst[i] + binary.LittleEndian.Uint64(src[8*i:])
		t := s - q
		dst[i] = t + q&uint64(int64(t)>>63) // s < q: t wrapped negative, add q back
	}
}

// Count is the number of updates in the sum.
func (a *Accumulator) Count() int { return a.count }

// Dimension is the number of model parameters of the updates.
func (a *Accumulator) Dimension() int { return a.dim }

// Epoch is the key epoch the updates are encrypted under.
func (a *Accumulator) Epoch() uint64 { return a.epoch }

// Seal freezes the sum as the sum of round and returns it for decryption. After Seal, Add
// returns ErrSealed and a second Seal fails too: one sum must reach the trustees under one
// round only, since a multiparty decryption must never run twice on the same ciphertext.
func (a *Accumulator) Seal(round uint64) (*Sum, error) {
	if a.sum == nil {
		return nil, errChecker
	}
	if a.sealed {
		return nil, ErrSealed
	}
	if a.count == 0 {
		return nil, fmt.Errorf("he: Seal: the sum of round %d is empty", round)
	}
	a.sealed = true
	s := &Sum{Epoch: a.epoch, Round: round, Contributors: a.count, Dimension: a.dim, params: a.params}
	b := SumBinding(a.epoch, round, a.count)
	n, pl := a.params.N(), a.params.polyLen()
	for j := 0; j < a.k; j++ {
		h := blobHeader{kind: kindSum, epoch: a.epoch, binding: b, index: uint32(j), count: uint32(a.k), dim: uint64(a.dim)}
		c0 := split(a.sum[2*j*pl:(2*j+1)*pl], n)
		c1 := split(a.sum[(2*j+1)*pl:(2*j+2)*pl], n)
		blob, err := appendBlob(make([]byte, 0, blobSize(a.params, 2)), a.params, h, c0, c1)
		if err != nil {
			return nil, err
		}
		s.Ciphertexts = append(s.Ciphertexts, blob)
	}
	return s, nil
}
