package he

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Member is a trustee on a roster: its public identity and its Shamir point.
type Member struct {
	PublicIdentity
	Point uint64
}

// Roster fixes everything a key ceremony depends on before anyone deals: the parameter set,
// the key epoch, the threshold, the common random string, and the trustees with their
// identities and Shamir points. Every dealing names the roster's digest, so a dealing made for
// another roster is refused. Trustees must agree on the roster out of band (each compares its
// Digest with the others'), exactly as they would compare key fingerprints.
type Roster struct {
	Epoch     uint64
	Threshold int
	// CRS is the common random string the public key's uniform polynomial a is derived from.
	CRS [32]byte
	// Members are sorted by Point.
	Members []Member

	params Params
}

const (
	rosterMagic   = "VGHR"
	rosterVersion = 1
)

// NewRoster makes a roster for members in the given order (their Shamir points are 1..n),
// with a fresh CRS from crypto/rand.
func NewRoster(p Params, epoch uint64, threshold int, members []PublicIdentity) (*Roster, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	r := &Roster{Epoch: epoch, Threshold: threshold, params: p}
	if _, err := rand.Read(r.CRS[:]); err != nil {
		return nil, fmt.Errorf("he: CRS: %w", err)
	}
	for i, m := range members {
		r.Members = append(r.Members, Member{PublicIdentity: m, Point: uint64(i + 1)})
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// MarshalBinary returns the canonical encoding: magic "VGHR", version 1, parameter digest (16),
// epoch (8), threshold (2), CRS (32), n (2), n * { point (8), public identity length (2),
// public identity }.
func (r *Roster) MarshalBinary() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	out := append([]byte(rosterMagic), rosterVersion)
	out = append(out, r.params.digest[:]...)
	out = binary.LittleEndian.AppendUint64(out, r.Epoch)
	out = binary.LittleEndian.AppendUint16(out, uint16(r.Threshold))
	out = append(out, r.CRS[:]...)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(r.Members)))
	for _, m := range r.Members {
		pb, err := m.PublicIdentity.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = binary.LittleEndian.AppendUint64(out, m.Point)
		out = binary.LittleEndian.AppendUint16(out, uint16(len(pb)))
		out = append(out, pb...)
	}
	return out, nil
}

// ParseRoster decodes a roster made under p, strictly.
func ParseRoster(p Params, data []byte) (*Roster, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	rd := reader{b: data, what: "roster"}
	if string(rd.take(4)) != rosterMagic || rd.u8() != rosterVersion {
		return nil, fmt.Errorf("%w: not a version %d roster", ErrMalformed, rosterVersion)
	}
	if d := rd.take(16); rd.err == nil && string(d) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: roster made under parameters %x, want %s", ErrParams, d[:8], p.ID())
	}
	r := &Roster{params: p}
	r.Epoch = rd.u64()
	r.Threshold = int(rd.u16())
	copy(r.CRS[:], rd.take(32))
	n := int(rd.u16())
	if rd.err == nil && (n < MinTrustees || n > MaxTrustees) {
		return nil, fmt.Errorf("%w: roster of %d trustees, want %d to %d", ErrMalformed, n, MinTrustees, MaxTrustees)
	}
	for i := 0; i < n && rd.err == nil; i++ {
		point := rd.u64()
		pb := rd.take(int(rd.u16()))
		if rd.err != nil {
			break
		}
		pi, err := ParsePublicIdentity(pb)
		if err != nil {
			return nil, fmt.Errorf("roster member %d: %w", i, err)
		}
		r.Members = append(r.Members, Member{PublicIdentity: pi, Point: point})
	}
	if err := rd.finish(); err != nil {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return r, nil
}

// Digest is the SHA-256 of the canonical encoding.
func (r *Roster) Digest() ([32]byte, error) {
	b, err := r.MarshalBinary()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

func (r *Roster) check() error {
	if err := r.params.valid(); err != nil {
		return err
	}
	if err := checkTrusteeSet(r.trustees(), r.Threshold); err != nil {
		return err
	}
	if c := keyCheckSetCount(len(r.Members), r.Threshold); c > MaxKeyCheckSets {
		return fmt.Errorf("%w: %d-of-%d: each trustee's test decryption would have %d sets of %d trustees to try, and at most %d are tried (any roster of up to 9 trustees is within it)",
			ErrThreshold, r.Threshold, len(r.Members), c, r.Threshold, MaxKeyCheckSets)
	}
	for _, m := range r.Members {
		if err := m.PublicIdentity.check(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Roster) trustees() []Trustee {
	ts := make([]Trustee, len(r.Members))
	for i, m := range r.Members {
		ts[i] = Trustee{ID: m.ID, Point: m.Point}
	}
	return ts
}

// index returns the position of the member with the given id, or -1.
func (r *Roster) index(id string) int {
	for i, m := range r.Members {
		if m.ID == id {
			return i
		}
	}
	return -1
}
