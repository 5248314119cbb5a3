package he

import (
	"crypto/hpke"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
)

// The key ceremony is distributed and has four rounds of messages (commitments, dealings,
// challenges, responses) before the approvals, relayed by anyone (the coordinator, a shared
// directory, a USB stick): the relay is trusted with nothing.
//
//  1. Each trustee makes an Identity and publishes its PublicIdentity.
//  2. Someone assembles the Roster (NewRoster); the trustees compare its Digest out of band.
//  3. Commit. Each trustee i calls Deal: it samples a fresh secret s_i (never stored),
//     Shamir-shares it with threshold t (mhe.Thresholdizer), seals the share for trustee j to
//     j's HPKE key with (roster, i, j) as HPKE info, computes its public-key share -a s_i + e_i
//     from the CRS (mhe public-key generation), and signs the dealing with its ML-DSA key. It
//     keeps the dealing and publishes only its Commitment: the signed SHA-256 of the dealing.
//  4. Reveal. Once a trustee holds all n commitments, Reveal checks them and the trustee
//     publishes its dealing. Nobody has seen a public-key share before every dealer is bound
//     to its own, so no dealer can choose its share to cancel the others' (the rogue-key
//     attack).
//  5. Finish. Each trustee j calls Finish with the n commitments and the n dealings: it checks
//     every signature, roster digest and commitment, opens the n shares sealed to it and adds
//     them into its share of s = sum s_i (mhe.Thresholdizer.AggregateShares), and adds the
//     public-key shares into the collective public key (b, a) = (-a s + e, a). Every trustee
//     computes the same KeyEpoch.
//  6. Test decryption (keycheck.go). Each trustee encrypts a random message of its own under
//     the new key (the ciphertext's c1 derived from its challenge, not chosen), has every set
//     of t trustees with it decrypt it, adds its own share last and approves the key epoch only
//     if the message comes back from every set. The key epoch is signed only with enough
//     approvals.
//
// Trust assumption: as in lattigo's mhe, the protocol keeps the key secret against passive
// (honest but curious) trustees, up to t-1 of them colluding. Against a malicious trustee it
// keeps the key from becoming one the trustee knows alone (commitments, then the test
// decryption, which a key whose secret the trustees' shares do not reconstruct fails), but
// nothing proves that a trustee's Shamir shares are consistent with its public-key share or
// with each other, so a malicious trustee can still make the key unusable for some or all
// sets of t trustees: the test decryption detects that for every set of t with an honest
// challenger in it (see KeyCheckSets), sets of honest trustees among them. The relay sees
// only sealed shares and public values; a relay that drops or alters a message stops the
// ceremony (signatures, digests), it cannot change its outcome.

// Dealing is one trustee's sealed Shamir shares and public-key share, published only after
// every trustee has committed (see Commitment).
type Dealing struct {
	RosterDigest [32]byte
	From         uint64   // the dealer's Shamir point
	PKShare      []uint64 // public-key generation share, NTT and Montgomery form
	Sealed       [][]byte // HPKE-sealed Shamir shares, one per member in roster order
	Signature    []byte   // ML-DSA-65 over everything above, context dealingContext

	params Params
}

const (
	dealingMagic   = "VGHD"
	dealingVersion = 1
	dealingContext = "vigil/he/dealing/v1"
)

// Deal runs the dealing step for self, a member of roster. It returns the dealing, which self
// keeps until Reveal allows it to be published, and the commitment to it, which self publishes
// now.
func Deal(roster *Roster, self *Identity) (*Dealing, *Commitment, error) {
	if roster == nil {
		return nil, nil, fmt.Errorf("he: Deal: nil roster")
	}
	if err := self.valid(); err != nil {
		return nil, nil, err
	}
	if err := roster.check(); err != nil {
		return nil, nil, err
	}
	me := roster.index(self.ID)
	if me < 0 || !slices.Equal(roster.Members[me].KEM, self.Public().KEM) {
		return nil, nil, fmt.Errorf("%w: %q is not on the roster with this identity", ErrCeremony, self.ID)
	}
	digest, err := roster.Digest()
	if err != nil {
		return nil, nil, err
	}
	p := roster.params
	rp := p.rlwe()
	ringQ := rp.RingQ()
	from := roster.Members[me].Point

	sk := rlwe.NewKeyGenerator(rp).GenSecretKeyNew()
	defer erase(sk.Value.Q)
	thr := mhe.NewThresholdizer(rp)
	poly, err := thr.GenShamirPolynomial(roster.Threshold, sk)
	if err != nil {
		return nil, nil, fmt.Errorf("he: Shamir polynomial: %w", err)
	}
	defer func() {
		for _, c := range poly.Value {
			erase(c.Q)
		}
	}()

	d := &Dealing{RosterDigest: digest, From: from, params: p}
	share := thr.AllocateThresholdSecretShare()
	defer erase(share.Q)
	for _, m := range roster.Members {
		thr.GenShamirSecretShare(mhe.ShamirPublicPoint(m.Point), poly, &share)
		ringQ.Reduce(share.Q, share.Q)
		pk, err := ceremonyKEM().NewPublicKey(m.KEM)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: member %q: HPKE public key: %v", ErrCeremony, m.ID, err)
		}
		plain := appendPoly(make([]byte, 0, p.polyBytes()), share.Q)
		sealed, err := hpke.Seal(pk, ceremonyKDF(), ceremonyAEAD(), shareInfo(digest, from, m.Point), plain)
		clear(plain)
		if err != nil {
			return nil, nil, fmt.Errorf("he: sealing share for %q: %w", m.ID, err)
		}
		d.Sealed = append(d.Sealed, sealed)
	}

	ckg := mhe.NewPublicKeyGenProtocol(rp)
	pkShare := ckg.AllocateShare()
	ckg.GenShare(sk, sampleCRP(p, roster.CRS), &pkShare)
	ringQ.Reduce(pkShare.Value.Q, pkShare.Value.Q)
	d.PKShare = flatten(pkShare.Value.Q)

	msg := d.signedPart()
	d.Signature = make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(self.sig, msg, []byte(dealingContext), true, d.Signature); err != nil {
		return nil, nil, fmt.Errorf("he: signing dealing: %w", err)
	}
	c, err := commit(self, d)
	if err != nil {
		return nil, nil, err
	}
	return d, c, nil
}

// Finish runs the last step for self: it verifies all commitments and all dealings (one of
// each from every member of roster, in any order; commitments must be the ones self checked
// with Reveal), and returns self's secret share and the key epoch. It refuses, with a
// *TrusteeError naming the trustee, a missing commitment or dealing, one not signed by the
// roster member, and a dealing that does not match its dealer's commitment.
func Finish(roster *Roster, self *Identity, commitments []*Commitment, dealings []*Dealing) (*SecretShare, *KeyEpoch, error) {
	if roster == nil {
		return nil, nil, fmt.Errorf("he: Finish: nil roster")
	}
	if err := self.valid(); err != nil {
		return nil, nil, err
	}
	if err := roster.check(); err != nil {
		return nil, nil, err
	}
	me := roster.index(self.ID)
	if me < 0 || !slices.Equal(roster.Members[me].KEM, self.Public().KEM) {
		return nil, nil, fmt.Errorf("%w: %q is not on the roster with this identity", ErrCeremony, self.ID)
	}
	digest, err := roster.Digest()
	if err != nil {
		return nil, nil, err
	}
	commits, err := verifyCommitments(roster, digest, commitments)
	if err != nil {
		return nil, nil, err
	}
	byPoint, err := verifyDealings(roster, digest, commits, dealings)
	if err != nil {
		return nil, nil, err
	}
	p := roster.params
	rp := p.rlwe()
	myPoint := roster.Members[me].Point

	thr := mhe.NewThresholdizer(rp)
	tsk := thr.AllocateThresholdSecretShare()
	part := thr.AllocateThresholdSecretShare()
	defer erase(part.Q)
	ckg := mhe.NewPublicKeyGenProtocol(rp)
	agg := ckg.AllocateShare()
	pkShare := ckg.AllocateShare()
	for _, m := range roster.Members {
		d := byPoint[m.Point]
		plain, err := hpke.Open(self.kem, ceremonyKDF(), ceremonyAEAD(), shareInfo(digest, d.From, myPoint), d.Sealed[me])
		if err != nil {
			return nil, nil, trusteeErr(m, ErrCeremony, "the share from %q does not open: %v", m.ID, err)
		}
		if len(plain) != p.polyBytes() || firstUnreduced(p, plain) >= 0 {
			clear(plain)
			return nil, nil, trusteeErr(m, ErrCeremony, "the share from %q is not a polynomial modulo Q", m.ID)
		}
		readPoly(part.Q, plain)
		clear(plain)
		if err := thr.AggregateShares(tsk, part, &tsk); err != nil {
			return nil, nil, fmt.Errorf("he: aggregating shares: %w", err)
		}
		unflatten(pkShare.Value.Q, d.PKShare)
		ckg.AggregateShares(agg, pkShare, &agg)
	}
	pk := rlwe.NewPublicKey(rp)
	ckg.GenPublicKey(agg, sampleCRP(p, roster.CRS), pk)

	key := &KeyEpoch{
		Epoch:     roster.Epoch,
		Threshold: roster.Threshold,
		Trustees:  roster.trustees(),
		CRS:       roster.CRS,
		params:    p,
		b:         flatten(pk.Value[0].Q),
	}
	keyDigest, err := key.Digest()
	if err != nil {
		return nil, nil, err
	}
	share := &SecretShare{
		Epoch:     roster.Epoch,
		Threshold: roster.Threshold,
		Point:     myPoint,
		Trustees:  roster.trustees(),
		KeyDigest: keyDigest,
		params:    p,
		value:     flatten(tsk.Q),
	}
	erase(tsk.Q)
	return share, key, nil
}

// verifyDealings checks that dealings are exactly one valid, signed dealing per member, each
// the one its dealer committed to.
func verifyDealings(roster *Roster, digest [32]byte, commits map[uint64]*Commitment, dealings []*Dealing) (map[uint64]*Dealing, error) {
	byPoint := make(map[uint64]*Dealing, len(dealings))
	for i, d := range dealings {
		if d == nil {
			return nil, fmt.Errorf("%w: dealing %d is nil", ErrCeremony, i)
		}
		if err := d.check(roster.params, len(roster.Members)); err != nil {
			return nil, fmt.Errorf("dealing %d: %w", i, err)
		}
		k := slices.IndexFunc(roster.Members, func(m Member) bool { return m.Point == d.From })
		if k < 0 {
			return nil, fmt.Errorf("%w: dealing %d is from Shamir point %d, not on the roster", ErrCeremony, i, d.From)
		}
		m := roster.Members[k]
		if d.RosterDigest != digest {
			return nil, trusteeErr(m, ErrCeremony, "the dealing from %q was made for another roster", m.ID)
		}
		if byPoint[d.From] != nil {
			return nil, trusteeErr(m, ErrCeremony, "two dealings from %q", m.ID)
		}
		var pub mldsa65.PublicKey
		if err := pub.UnmarshalBinary(m.Sign); err != nil {
			return nil, trusteeErr(m, ErrCeremony, "member %q: %v", m.ID, err)
		}
		if !mldsa65.Verify(&pub, d.signedPart(), []byte(dealingContext), d.Signature) {
			return nil, trusteeErr(m, ErrCeremony, "the dealing from %q has a bad signature", m.ID)
		}
		if c := commits[d.From]; c == nil || c.DealingDigest != d.digest() {
			return nil, trusteeErr(m, ErrCeremony, "the dealing from %q does not match its commitment", m.ID)
		}
		byPoint[d.From] = d
	}
	for _, m := range roster.Members {
		if byPoint[m.Point] == nil {
			return nil, trusteeErr(m, ErrCeremony, "no dealing from %q", m.ID)
		}
	}
	return byPoint, nil
}

// shareInfo is the HPKE info string of the share sealed by point from to point to.
func shareInfo(roster [32]byte, from, to uint64) []byte {
	info := append([]byte("vigil/he/ceremony/share/v1"), roster[:]...)
	info = binary.LittleEndian.AppendUint64(info, from)
	return binary.LittleEndian.AppendUint64(info, to)
}
