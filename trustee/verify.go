package trustee

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// sumVerifier checks one CommitSum stream, a header and then one contribution at a time, and
// adds the contributions' c1 polynomials into the trustee's own sum. It is pure (no I/O, no
// clock: now is given): the server feeds it from the stream. Its memory is the c1 sum plus
// one (device, statement digest) pair per device, which the set digest needs.
type sumVerifier struct {
	params  he.Params
	root    *release.Root
	now     time.Time
	hdr     *vigilv1.SumHeader
	c1      *he.C1Sum
	seen    map[string]bool
	members []member
}

// member is one device of the participant set and the digest of the update it signed, with
// when its record expires (a part may be merged into a sum later).
type member struct {
	device    string
	statement [32]byte
	expires   time.Time
}

// newSumVerifier checks the header against the trustee's key and policy: its parameter set
// and key epoch, a dimension in range, at least minContributors announced, and a round not
// before lastRound, the last one the trustee decrypted.
func newSumVerifier(sh *he.SecretShare, minContributors int, lastRound uint64, root *release.Root, now time.Time, hdr *vigilv1.SumHeader) (*sumVerifier, error) {
	if err := checkSumHeader(sh, root, hdr); err != nil {
		return nil, err
	}
	switch {
	case int(hdr.GetContributors()) < minContributors:
		return nil, fmt.Errorf("%w: round %d announces %d updates, this trustee requires at least %d",
			ErrTooFewContributors, hdr.GetRound(), hdr.GetContributors(), minContributors)
	case hdr.GetContributors() < hdr.GetMinParticipants():
		// Each device signed this m_min (its statement is checked against it below) and added
		// noise for a sum of at least that many: fewer would hold too little noise.
		return nil, fmt.Errorf("%w: round %d announces %d updates, its devices sized their noise for at least %d",
			ErrTooFewContributors, hdr.GetRound(), hdr.GetContributors(), hdr.GetMinParticipants())
	case hdr.GetContributors() > he.MaxContributors:
		return nil, fmt.Errorf("%w: %d contributors, at most %d", ErrHeader, hdr.GetContributors(), he.MaxContributors)
	case len(hdr.GetExtends()) > 0:
		return nil, fmt.Errorf("%w: a sum's header names a part it extends; a sum names its parts", ErrContribution)
	}
	return newVerifier(sh, lastRound, root, now, hdr)
}

// newPartVerifier checks the header of a part of a round's contributions (CommitPart), which
// need not reach any m_min on its own and names no parts itself (it may extend one: the
// caller merges that).
func newPartVerifier(sh *he.SecretShare, lastRound uint64, root *release.Root, now time.Time, hdr *vigilv1.SumHeader) (*sumVerifier, error) {
	if err := checkSumHeader(sh, root, hdr); err != nil {
		return nil, err
	}
	switch {
	case hdr.GetContributors() < 1 || hdr.GetContributors() > he.MaxContributors:
		return nil, fmt.Errorf("%w: a part of %d contributions, want 1 to %d", ErrContribution, hdr.GetContributors(), he.MaxContributors)
	case len(hdr.GetParts()) > 0:
		return nil, fmt.Errorf("%w: a part names parts of its own", ErrContribution)
	}
	return newVerifier(sh, lastRound, root, now, hdr)
}

// checkSumHeader checks what a sum's and a part's header must both be: under this trustee's
// key and parameters.
func checkSumHeader(sh *he.SecretShare, root *release.Root, hdr *vigilv1.SumHeader) error {
	p := sh.Params()
	switch {
	case root == nil:
		return errors.New("trustee: no root of trust to check device records under")
	case hdr == nil:
		return fmt.Errorf("%w: the stream does not start with a header", ErrContribution)
	case hdr.GetParamsId() != p.ID():
		return fmt.Errorf("%w: parameter set %q, this trustee holds a share under %q", ErrKeyMismatch, hdr.GetParamsId(), p.ID())
	case hdr.GetKeyEpoch() != sh.Epoch:
		return fmt.Errorf("%w: key epoch %d, this trustee holds a share of epoch %d", ErrKeyMismatch, hdr.GetKeyEpoch(), sh.Epoch)
	}
	return nil
}

func newVerifier(sh *he.SecretShare, lastRound uint64, root *release.Root, now time.Time, hdr *vigilv1.SumHeader) (*sumVerifier, error) {
	switch {
	case hdr.GetRound() == 0:
		return nil, fmt.Errorf("%w: round 0; rounds are numbered from 1", ErrHeader)
	case hdr.GetRound() < lastRound:
		// The last decrypted round itself goes on: the same set again gets the same commitment
		// (commitDecision), any other set is refused there.
		return nil, fmt.Errorf("%w: round %d is before round %d, the last one this trustee decrypted", ErrRoundDone, hdr.GetRound(), lastRound)
	case hdr.GetDimension() < 1 || hdr.GetDimension() > he.MaxDimension:
		return nil, fmt.Errorf("%w: dimension %d, want 1 to %d", ErrHeader, hdr.GetDimension(), he.MaxDimension)
	}
	c1, err := he.NewC1Sum(sh.Params(), sh.Epoch, int(hdr.GetDimension()))
	if err != nil {
		return nil, err
	}
	return &sumVerifier{params: sh.Params(), root: root, now: now, hdr: hdr, c1: c1, seen: map[string]bool{}}, nil
}

// add checks one contribution and adds its c1 polynomials. It refuses, changing nothing: more
// contributions than announced, a device twice, a device record that does not verify under
// the root's enrolment role or names another device, a signature that does not verify over
// the statement recomputed from what arrived, and c1 polynomials of the wrong number, size or
// with unreduced residues. It is admit, check and accept in one; the server runs check, the
// costly step, for several contributions at a time.
func (v *sumVerifier) add(c *vigilv1.Contribution) error {
	if err := v.admit(c); err != nil {
		return err
	}
	m, err := v.check(c)
	if err != nil {
		return err
	}
	return v.accept(c, m)
}

// admit is the cheap checks, in stream order: a valid device id not seen before in the
// stream, no more contributions than announced. It reserves the device.
func (v *sumVerifier) admit(c *vigilv1.Contribution) error {
	return v.admitDevice(c.GetDeviceId())
}

func (v *sumVerifier) admitDevice(dev string) error {
	if err := vigilv1.ValidID("device_id", dev); err != nil {
		return fmt.Errorf("%w: %v", ErrContribution, err)
	}
	if len(v.seen) >= int(v.hdr.GetContributors()) {
		return fmt.Errorf("%w: more than the %d contributions the header announced", ErrContribution, v.hdr.GetContributors())
	}
	if v.seen[dev] {
		return fmt.Errorf("%w: device %q contributes twice to round %d", ErrContribution, dev, v.hdr.GetRound())
	}
	v.seen[dev] = true
	return nil
}

// check verifies a contribution's record and signature and returns its member entry. It only
// reads v, so several checks may run at once.
func (v *sumVerifier) check(c *vigilv1.Contribution) (member, error) {
	dev := c.GetDeviceId()
	if len(c.GetNonce()) != vigilv1.NonceSize {
		return member{}, fmt.Errorf("%w: device %q: nonce of %d bytes, want %d", ErrContribution, dev, len(c.GetNonce()), vigilv1.NonceSize)
	}
	heads := make([][32]byte, len(c.GetHeadDigests()))
	for j, h := range c.GetHeadDigests() {
		if len(h) != 32 {
			return member{}, fmt.Errorf("%w: device %q: header digest %d is %d bytes", ErrContribution, dev, j, len(h))
		}
		heads[j] = [32]byte(h)
	}
	epoch, round := v.hdr.GetKeyEpoch(), v.hdr.GetRound()
	binding := he.UpdateBinding(epoch, round, dev, c.GetNonce())
	stmt, err := he.UpdateStatement(v.params, binding, c.GetBaseVersion(), v.hdr.GetMinParticipants(), heads, c.GetC1())
	if err != nil {
		return member{}, fmt.Errorf("%w: device %q: %w", ErrContribution, dev, err)
	}
	rec, err := v.root.VerifyDeviceRecord(c.GetDeviceRecord(), v.now)
	if err != nil {
		return member{}, fmt.Errorf("%w: device %q: its record does not verify under the enrolment role: %w", ErrContribution, dev, err)
	}
	if rec.DeviceID != dev {
		return member{}, fmt.Errorf("%w: device %q presents the record of device %q", ErrContribution, dev, rec.DeviceID)
	}
	if err := rec.Key().Verify(stmt[:], c.GetSignature(), he.UpdateContext); err != nil {
		return member{}, fmt.Errorf("%w: device %q: the update's signature does not verify for round %d (altered, replayed or forged): %w",
			ErrContribution, dev, round, err)
	}
	return member{device: dev, statement: stmt, expires: rec.Expires}, nil
}

// accept adds a checked contribution's c1 polynomials (C1Sum.Add checks their number, size and
// reduction) and counts it.
func (v *sumVerifier) accept(c *vigilv1.Contribution, m member) error {
	if err := v.c1.Add(c.GetC1()); err != nil {
		return fmt.Errorf("%w: device %q: %w", ErrContribution, m.device, err)
	}
	v.members = append(v.members, m)
	return nil
}

// merge adds a part the trustee verified earlier (CommitPart) as if its contributions had
// been streamed: each of its devices is admitted (so none counts twice, whatever mix of parts
// and stream carries it), and its c1 sum is added. The part must be of the same round, key
// epoch, dimension and m_min as the sum.
func (v *sumVerifier) merge(p *part) error {
	h := p.hdr
	if h.GetRound() != v.hdr.GetRound() || h.GetKeyEpoch() != v.hdr.GetKeyEpoch() || h.GetDimension() != v.hdr.GetDimension() ||
		h.GetMinParticipants() != v.hdr.GetMinParticipants() {
		return fmt.Errorf("%w: part %x is of round %d (epoch %d, dimension %d, m_min %d), the sum of round %d (epoch %d, dimension %d, m_min %d)",
			ErrContribution, p.id[:8], h.GetRound(), h.GetKeyEpoch(), h.GetDimension(), h.GetMinParticipants(),
			v.hdr.GetRound(), v.hdr.GetKeyEpoch(), v.hdr.GetDimension(), v.hdr.GetMinParticipants())
	}
	for _, m := range p.members {
		if !v.now.Before(m.expires) {
			// As a streamed contribution's record is checked now, not when it was first sent.
			return fmt.Errorf("%w: part %x: device %q's record expired at %s", ErrContribution, p.id[:8], m.device, m.expires.Format(time.RFC3339))
		}
		if err := v.admitDevice(m.device); err != nil {
			return fmt.Errorf("part %x: %w", p.id[:8], err)
		}
	}
	if err := v.c1.Merge(p.c1); err != nil {
		return fmt.Errorf("%w: part %x: %w", ErrContribution, p.id[:8], err)
	}
	v.members = append(v.members, p.members...)
	return nil
}

// finish checks that every announced contribution arrived and returns the set digest.
func (v *sumVerifier) finish() ([32]byte, error) {
	if len(v.members) != int(v.hdr.GetContributors()) {
		return [32]byte{}, fmt.Errorf("%w: %d contributions arrived, the header announced %d", ErrContribution, len(v.members), v.hdr.GetContributors())
	}
	return setDigest(v.hdr, v.members), nil
}

// setDigest names a participant set: SHA-256 over the round's key epoch, round and dimension
// and the (device, statement digest) pairs sorted by device, so that the order in which the
// coordinator streams them does not matter and any other update or device changes it.
func setDigest(hdr *vigilv1.SumHeader, members []member) [32]byte {
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b member) int { return strings.Compare(a.device, b.device) })
	h := sha256.New()
	var buf []byte
	buf = append(buf, "vigil/trustee/set/v1"...)
	buf = binary.BigEndian.AppendUint64(buf, hdr.GetKeyEpoch())
	buf = binary.BigEndian.AppendUint64(buf, hdr.GetRound())
	buf = binary.BigEndian.AppendUint64(buf, hdr.GetDimension())
	buf = binary.BigEndian.AppendUint64(buf, uint64(len(sorted)))
	h.Write(buf)
	for _, m := range sorted {
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(m.device))))
		h.Write([]byte(m.device))
		h.Write(m.statement[:])
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// NewContribution is the contribution a coordinator stores and streams for one accepted
// update: the device's record and signature as they arrived, and the update's ciphertexts
// split as the statement covers them (he.UpdateParts). The c1 slices share cts's memory.
func NewContribution(p he.Params, record []byte, device string, nonce []byte, baseVersion uint64, cts [][]byte, signature []byte) (*vigilv1.Contribution, error) {
	heads, c1, err := he.UpdateParts(p, cts)
	if err != nil {
		return nil, err
	}
	c := &vigilv1.Contribution{DeviceRecord: record, DeviceId: device, Nonce: nonce, BaseVersion: baseVersion, Signature: signature, C1: c1}
	for _, h := range heads {
		c.HeadDigests = append(c.HeadDigests, h[:])
	}
	return c, nil
}
