package he

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// SecretShare is one trustee's t-out-of-n share of the collective secret key of a key epoch:
// its aggregated Shamir share (lattigo mhe.ShamirSecretShare), with everything needed to use
// it and to check it belongs to the published key. It is secret; trustees keep it in a file
// readable only by themselves (see the trustee package).
type SecretShare struct {
	Epoch     uint64
	Threshold int
	// Point is this trustee's Shamir point; Trustees lists every trustee of the epoch.
	Point    uint64
	Trustees []Trustee
	// KeyDigest is the digest of the key-epoch document whose secret this is a share of.
	KeyDigest [32]byte

	params Params
	value  []uint64 // NTT and Montgomery form, as lattigo keeps secret keys; flat RNS layout
}

// Share file layout (little-endian):
//
//	magic "VGHS", version 1, parameter digest (16), epoch (8), threshold (2), n (2),
//	n * { point (8), id length (1), id }, own point (8), key digest (32),
//	share: one polynomial in the flat RNS layout of rns.go (2N residues, 8 bytes each),
//	SHA-256 of everything before (32)
//
// The checksum catches a damaged file before a damaged key produces wrong decryption shares.
const (
	shareMagic   = "VGHS"
	shareVersion = 1
)

// TrusteeID returns the id of the trustee holding the share.
func (s *SecretShare) TrusteeID() string {
	for _, t := range s.Trustees {
		if t.Point == s.Point {
			return t.ID
		}
	}
	return ""
}

// Params returns the parameter set of the share.
func (s *SecretShare) Params() Params { return s.params }

// MarshalBinary returns the canonical encoding of s.
func (s *SecretShare) MarshalBinary() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	out := make([]byte, 0, 128+len(s.Trustees)*(9+MaxIDLen)+8*len(s.value))
	out = append(out, shareMagic...)
	out = append(out, shareVersion)
	out = append(out, s.params.digest[:]...)
	out = binary.LittleEndian.AppendUint64(out, s.Epoch)
	out = binary.LittleEndian.AppendUint16(out, uint16(s.Threshold))
	out = binary.LittleEndian.AppendUint16(out, uint16(len(s.Trustees)))
	for _, t := range s.Trustees {
		out = binary.LittleEndian.AppendUint64(out, t.Point)
		out = append(out, byte(len(t.ID)))
		out = append(out, t.ID...)
	}
	out = binary.LittleEndian.AppendUint64(out, s.Point)
	out = append(out, s.KeyDigest[:]...)
	out = appendCoeffs(out, s.value)
	sum := sha256.Sum256(out)
	return append(out, sum[:]...), nil
}

// ParseSecretShare decodes a share made under p, strictly.
func ParseSecretShare(p Params, data []byte) (*SecretShare, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	if len(data) < sha256.Size {
		return nil, fmt.Errorf("%w: secret share of %d bytes", ErrMalformed, len(data))
	}
	body, sum := data[:len(data)-sha256.Size], data[len(data)-sha256.Size:]
	want := sha256.Sum256(body)
	if subtle.ConstantTimeCompare(sum, want[:]) != 1 {
		return nil, fmt.Errorf("%w: secret share checksum mismatch (file damaged?)", ErrMalformed)
	}
	r := reader{b: body, what: "secret share"}
	if string(r.take(4)) != shareMagic || r.u8() != shareVersion {
		return nil, fmt.Errorf("%w: not a version %d secret share", ErrMalformed, shareVersion)
	}
	if d := r.take(16); r.err == nil && string(d) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: secret share made under parameters %x, want %s", ErrParams, d[:8], p.ID())
	}
	s := &SecretShare{params: p}
	s.Epoch = r.u64()
	s.Threshold = int(r.u16())
	n := int(r.u16())
	if r.err == nil && (n < MinTrustees || n > MaxTrustees) {
		return nil, fmt.Errorf("%w: %d trustees, want %d to %d", ErrMalformed, n, MinTrustees, MaxTrustees)
	}
	for i := 0; i < n && r.err == nil; i++ {
		point := r.u64()
		s.Trustees = append(s.Trustees, Trustee{Point: point, ID: string(r.take(int(r.u8())))})
	}
	s.Point = r.u64()
	copy(s.KeyDigest[:], r.take(32))
	s.value = r.coeffs(p)
	if err := r.finish(); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *SecretShare) check() error {
	if err := s.params.valid(); err != nil {
		return err
	}
	if err := checkTrusteeSet(s.Trustees, s.Threshold); err != nil {
		return err
	}
	if s.TrusteeID() == "" {
		return fmt.Errorf("%w: own Shamir point %d is not among the trustees", ErrMalformed, s.Point)
	}
	if len(s.value) != s.params.polyLen() {
		return fmt.Errorf("%w: secret share has no key material", ErrMalformed)
	}
	if i := unreducedAt(s.params, s.value); i >= 0 {
		return fmt.Errorf("%w: secret share residue %d is not reduced modulo its prime", ErrMalformed, i)
	}
	return nil
}
