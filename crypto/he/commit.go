package he

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Commitment is a trustee's signed promise of its dealing, published before any dealing is:
// the SHA-256 of the dealing's signed part (which holds the public-key share), signed with
// the dealer's ML-DSA identity key. Because every trustee reveals its dealing only once it
// holds all n commitments (Reveal), no dealer can choose its public-key share after seeing
// another's: the rogue-key attack, in which the last dealer sets its share to cancel the
// others' so that the collective key becomes one whose secret it alone knows, needs exactly
// that.
type Commitment struct {
	RosterDigest  [32]byte
	From          uint64   // the dealer's Shamir point
	DealingDigest [32]byte // SHA-256 of the dealing's signed part
	Signature     []byte   // ML-DSA-65 over everything above, context commitmentContext

	params Params
}

// Commitment layout (little-endian): magic "VGHC", version 1, parameter digest (16), roster
// digest (32), dealer's point (8), dealing digest (32), then the ML-DSA-65 signature (fixed
// size) over everything before it.
const (
	commitmentMagic   = "VGHC"
	commitmentVersion = 1
	commitmentContext = "vigil/he/commitment/v1"
)

// TrusteeError is a ceremony failure that one trustee's message caused: missing, not signed
// by the roster member, or not matching the commitment it made. Callers that relay messages
// (the CLI, a coordinator) use Trustee and Point to name the file or peer at fault.
type TrusteeError struct {
	Trustee string
	Point   uint64
	Err     error // wraps ErrCeremony or ErrKeyCheck and names the trustee
}

func (e *TrusteeError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *TrusteeError) Unwrap() error { return e.Err }

// trusteeErr makes a TrusteeError about m whose text is the sentinel, then the formatted
// message.
func trusteeErr(m Member, sentinel error, format string, args ...any) error {
	return &TrusteeError{Trustee: m.ID, Point: m.Point, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

// commit returns self's signed commitment to d.
func commit(self *Identity, d *Dealing) (*Commitment, error) {
	c := &Commitment{RosterDigest: d.RosterDigest, From: d.From, DealingDigest: d.digest(), params: d.params}
	c.Signature = make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(self.sig, c.signedPart(), []byte(commitmentContext), true, c.Signature); err != nil {
		return nil, fmt.Errorf("he: signing commitment: %w", err)
	}
	return c, nil
}

// digest is the SHA-256 of the dealing's signed part: what its dealer commits to. The
// signature is left out because ML-DSA signing is randomised, and it adds nothing: the
// commitment is signed by the same key.
func (d *Dealing) digest() [32]byte { return sha256.Sum256(d.signedPart()) }

// Reveal is the step between Deal and Finish: it checks that commitments hold exactly one
// valid commitment from every member of roster, the one to d among them, and only then
// returns nil, meaning that self may publish d. A trustee that revealed its dealing earlier
// would let a dealer who has not committed yet choose its public-key share knowing d's.
// Finish must be given the same commitments that Reveal checked (see CommitmentsDigest).
func Reveal(roster *Roster, d *Dealing, commitments []*Commitment) error {
	if roster == nil || d == nil {
		return fmt.Errorf("he: Reveal: nil roster or dealing")
	}
	if err := roster.check(); err != nil {
		return err
	}
	digest, err := roster.Digest()
	if err != nil {
		return err
	}
	byPoint, err := verifyCommitments(roster, digest, commitments)
	if err != nil {
		return err
	}
	own := byPoint[d.From]
	if own == nil || own.DealingDigest != d.digest() {
		return fmt.Errorf("%w: the commitments do not include one to this dealing (Shamir point %d)", ErrCeremony, d.From)
	}
	return nil
}

// CommitmentsDigest is the SHA-256 of the commitments' encodings in Shamir point order. A
// trustee records it when it reveals and compares it when it finishes, so that a dealer who
// later hands it a second commitment (made after seeing the revealed dealings) is caught.
func CommitmentsDigest(commitments []*Commitment) ([32]byte, error) {
	sorted := slices.Clone(commitments)
	if slices.Contains(sorted, nil) {
		return [32]byte{}, fmt.Errorf("he: CommitmentsDigest: nil commitment")
	}
	slices.SortFunc(sorted, func(a, b *Commitment) int { return cmp.Compare(a.From, b.From) })
	h := sha256.New()
	h.Write([]byte("vigil/he/commitments/v1"))
	for _, c := range sorted {
		b, err := c.MarshalBinary()
		if err != nil {
			return [32]byte{}, err
		}
		h.Write(b)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, nil
}

// verifyCommitments checks that commitments are exactly one commitment per member of roster,
// each for this roster and signed by that member.
func verifyCommitments(roster *Roster, digest [32]byte, commitments []*Commitment) (map[uint64]*Commitment, error) {
	byPoint := make(map[uint64]*Commitment, len(roster.Members))
	for i, c := range commitments {
		if c == nil {
			return nil, fmt.Errorf("%w: commitment %d is nil", ErrCeremony, i)
		}
		if err := c.check(roster.params); err != nil {
			return nil, fmt.Errorf("commitment %d: %w", i, err)
		}
		k := slices.IndexFunc(roster.Members, func(m Member) bool { return m.Point == c.From })
		if k < 0 {
			return nil, fmt.Errorf("%w: commitment %d is from Shamir point %d, not on the roster", ErrCeremony, i, c.From)
		}
		m := roster.Members[k]
		if c.RosterDigest != digest {
			return nil, trusteeErr(m, ErrCeremony, "the commitment from %q was made for another roster", m.ID)
		}
		if byPoint[c.From] != nil {
			return nil, trusteeErr(m, ErrCeremony, "two commitments from %q", m.ID)
		}
		var pub mldsa65.PublicKey
		if err := pub.UnmarshalBinary(m.Sign); err != nil {
			return nil, trusteeErr(m, ErrCeremony, "member %q: %v", m.ID, err)
		}
		if !mldsa65.Verify(&pub, c.signedPart(), []byte(commitmentContext), c.Signature) {
			return nil, trusteeErr(m, ErrCeremony, "the commitment from %q is not signed by %q's identity key", m.ID, m.ID)
		}
		byPoint[c.From] = c
	}
	for _, m := range roster.Members {
		if byPoint[m.Point] == nil {
			return nil, trusteeErr(m, ErrCeremony, "no commitment from %q", m.ID)
		}
	}
	return byPoint, nil
}

func (c *Commitment) signedPart() []byte {
	out := make([]byte, 0, 5+16+32+8+32)
	out = append(out, commitmentMagic...)
	out = append(out, commitmentVersion)
	out = append(out, c.params.digest[:]...)
	out = append(out, c.RosterDigest[:]...)
	out = binary.LittleEndian.AppendUint64(out, c.From)
	return append(out, c.DealingDigest[:]...)
}

// MarshalBinary returns the canonical encoding of c.
func (c *Commitment) MarshalBinary() ([]byte, error) {
	if err := c.check(c.params); err != nil {
		return nil, err
	}
	return append(c.signedPart(), c.Signature...), nil
}

// ParseCommitment decodes a commitment made under p, strictly. It does not verify the
// signature: Reveal and Finish do, against the roster.
func ParseCommitment(p Params, data []byte) (*Commitment, error) {
	if err := p.valid(); err != nil {
		return nil, err
	}
	r := reader{b: data, what: "commitment"}
	if string(r.take(4)) != commitmentMagic || r.u8() != commitmentVersion {
		return nil, fmt.Errorf("%w: not a version %d commitment", ErrMalformed, commitmentVersion)
	}
	if dg := r.take(16); r.err == nil && string(dg) != string(p.digest[:]) {
		return nil, fmt.Errorf("%w: commitment made under parameters %x, want %s", ErrParams, dg[:8], p.ID())
	}
	c := &Commitment{params: p}
	copy(c.RosterDigest[:], r.take(32))
	c.From = r.u64()
	copy(c.DealingDigest[:], r.take(32))
	c.Signature = clone(r.take(mldsa65.SignatureSize))
	if err := r.finish(); err != nil {
		return nil, err
	}
	if err := c.check(p); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Commitment) check(p Params) error {
	if err := p.valid(); err != nil {
		return err
	}
	if c.params.digest != p.digest {
		return fmt.Errorf("%w: commitment under %s, want %s", ErrParams, c.params.ID(), p.ID())
	}
	if c.From == 0 || c.From > MaxPoint {
		return fmt.Errorf("%w: dealer's Shamir point %d", ErrMalformed, c.From)
	}
	if len(c.Signature) != mldsa65.SignatureSize {
		return fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(c.Signature), mldsa65.SignatureSize)
	}
	return nil
}
