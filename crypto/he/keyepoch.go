package he

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/utils/sampling"
)

// Trustee names one trustee of a key epoch: its identifier and its public Shamir point.
type Trustee struct {
	ID    string
	Point uint64
}

// KeyEpoch is the public outcome of a key ceremony: the collective public key, the trustees
// holding shares of its secret, and the threshold t of them needed to decrypt. Its canonical
// encoding (MarshalBinary) is what the coordinator signs under the root of trust and devices
// verify before they encrypt under it.
//
// The public key is (b, a) with a sampled from the common random string CRS and b = -a s + e
// summed over the trustees' ceremony shares; the encoding carries the 32-byte CRS instead of
// a, so that anyone can check that a came from the string the trustees agreed on.
type KeyEpoch struct {
	Epoch     uint64
	Threshold int
	// Trustees are sorted by Point.
	Trustees []Trustee
	CRS      [32]byte

	params Params
	b      []uint64 // NTT and Montgomery form, as lattigo keeps public keys; flat RNS layout
}

// Key-epoch document layout (little-endian):
//
//	magic "VGHK", version 1, parameter digest (16), epoch (8), threshold (2), n (2),
//	n * { point (8), id length (1), id }, CRS (32), b: one polynomial in the flat RNS
//	layout of rns.go (2N residues, 8 bytes each)
const (
	keyEpochMagic   = "VGHK"
	keyEpochVersion = 1
)

// MarshalBinary returns the canonical encoding of k.
func (k *KeyEpoch) MarshalBinary() ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 64+len(k.Trustees)*(9+MaxIDLen)+8*len(k.b))
	out = append(out, keyEpochMagic...)
	out = append(out, keyEpochVersion)
	out = append(out, k.params.digest[:]...)
	out = binary.LittleEndian.AppendUint64(out, k.Epoch)
	out = binary.LittleEndian.AppendUint16(out, uint16(k.Threshold))
	out = binary.LittleEndian.AppendUint16(out, uint16(len(k.Trustees)))
	for _, t := range k.Trustees {
		out = binary.LittleEndian.AppendUint64(out, t.Point)
		out = append(out, byte(len(t.ID)))
		out = append(out, t.ID...)
	}
	out = append(out, k.CRS[:]...)
	out = appendCoeffs(out, k.b)
	return out, nil
}

// ParseKeyEpoch decodes a key-epoch document made under p. It is strict: it accepts exactly
// the bytes MarshalBinary produces for some valid KeyEpoch, and nothing else.
func ParseKeyEpoch(p Params, data []byte) (*KeyEpoch, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	r := reader{b: data, what: "key epoch"}
	if string(r.take(4)) != keyEpochMagic || r.u8() != keyEpochVersion {
		return nil, fmt.Errorf("%w: not a version %d key-epoch document", ErrMalformed, keyEpochVersion)
	}
	if d := r.take(16); r.err == nil && string(d) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: key epoch made under parameters %x, want %s", ErrParams, d[:8], p.ID())
	}
	k := &KeyEpoch{params: p}
	k.Epoch = r.u64()
	k.Threshold = int(r.u16())
	n := int(r.u16())
	if r.err == nil && (n < MinTrustees || n > MaxTrustees) {
		return nil, fmt.Errorf("%w: %d trustees, want %d to %d", ErrMalformed, n, MinTrustees, MaxTrustees)
	}
	for i := 0; i < n && r.err == nil; i++ {
		point := r.u64()
		id := string(r.take(int(r.u8())))
		k.Trustees = append(k.Trustees, Trustee{ID: id, Point: point})
	}
	copy(k.CRS[:], r.take(32))
	k.b = r.coeffs(p)
	if err := r.finish(); err != nil {
		return nil, err
	}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// Digest is the SHA-256 of the canonical encoding. Trustees' share files and Info answers
// carry it, so that everyone can check they hold shares of the key devices encrypt under.
func (k *KeyEpoch) Digest() ([32]byte, error) {
	b, err := k.MarshalBinary()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Params returns the parameter set the key was made under.
func (k *KeyEpoch) Params() Params { return k.params }

// check validates every field; it is what makes MarshalBinary canonical and Parse strict.
func (k *KeyEpoch) check() error {
	if err := k.params.valid(); err != nil {
		return err
	}
	if err := checkTrusteeSet(k.Trustees, k.Threshold); err != nil {
		return err
	}
	if len(k.b) != k.params.polyLen() {
		return fmt.Errorf("%w: key epoch has no public key", ErrMalformed)
	}
	if i := unreducedAt(k.params, k.b); i >= 0 {
		return fmt.Errorf("%w: public key residue %d is not reduced modulo its prime", ErrMalformed, i)
	}
	return nil
}

// checkTrusteeSet validates a trustee list: n in range, threshold in [MinThreshold, n], ids
// well-formed and distinct, points in [1, MaxPoint] and strictly increasing.
func checkTrusteeSet(ts []Trustee, threshold int) error {
	n := len(ts)
	if n < MinTrustees || n > MaxTrustees {
		return fmt.Errorf("%w: %d trustees, want %d to %d", ErrMalformed, n, MinTrustees, MaxTrustees)
	}
	if threshold < MinThreshold || threshold > n {
		return fmt.Errorf("%w: threshold %d with %d trustees, want %d to %d", ErrMalformed, threshold, n, MinThreshold, n)
	}
	ids := make(map[string]bool, n)
	for i, t := range ts {
		if err := validID(t.ID); err != nil {
			return fmt.Errorf("%w: trustee %d: %v", ErrMalformed, i, err)
		}
		if ids[t.ID] {
			return fmt.Errorf("%w: trustee id %q appears twice", ErrMalformed, t.ID)
		}
		ids[t.ID] = true
		if t.Point == 0 || t.Point > MaxPoint {
			return fmt.Errorf("%w: trustee %q has Shamir point %d, want 1 to %d", ErrMalformed, t.ID, t.Point, MaxPoint)
		}
		if i > 0 && t.Point <= ts[i-1].Point {
			return fmt.Errorf("%w: Shamir points not strictly increasing at trustee %q", ErrMalformed, t.ID)
		}
	}
	return nil
}

// publicKey rebuilds the lattigo public key (b, a), sampling a from the CRS.
func (k *KeyEpoch) publicKey() *rlwe.PublicKey {
	rp := k.params.rlwe()
	pk := rlwe.NewPublicKey(rp)
	unflatten(pk.Value[0].Q, k.b)
	crp := sampleCRP(k.params, k.CRS)
	pk.Value[1].Q.Copy(crp.Value.Q)
	return pk
}

// sampleCRP derives the common random polynomial of the public-key generation protocol from
// the CRS, with lattigo's keyed BLAKE2b XOF as the common random string.
func sampleCRP(p Params, crs [32]byte) mhe.PublicKeyGenCRP {
	key := append([]byte("vigil/he/crs/v1:"), crs[:]...)
	prng, err := sampling.NewKeyedPRNG(key)
	if err != nil {
		// blake2b rejects only keys longer than 64 bytes; ours is 48.
		panic(fmt.Sprintf("he: keyed PRNG: %v", err))
	}
	return mhe.NewPublicKeyGenProtocol(p.rlwe()).SampleCRP(prng)
}

// validID checks a trustee identifier: 1 to MaxIDLen characters of [A-Za-z0-9._-].
func validID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("id %q must be 1 to %d characters", id, MaxIDLen)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("id %q has the character %q; only letters, digits, '.', '_' and '-' are allowed", id, r)
		}
	}
	return nil
}
