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

// The key ceremony is distributed and has one round of messages, relayed by anyone (the
// coordinator, a shared directory, a USB stick): the relay is trusted with nothing.
//
//  1. Each trustee makes an Identity and publishes its PublicIdentity.
//  2. Someone assembles the Roster (NewRoster); the trustees compare its Digest out of band.
//  3. Each trustee i calls Deal: it samples a fresh secret s_i (never stored), Shamir-shares it
//     with threshold t (mhe.Thresholdizer), seals the share for trustee j to j's HPKE key with
//     (roster, i, j) as HPKE info, computes its public-key share -a s_i + e_i from the CRS (mhe
//     public-key generation), and signs the dealing with its ML-DSA key.
//  4. Each trustee j calls Finish with all n dealings: it checks every signature and roster
//     digest, opens the n shares sealed to it and adds them into its share of s = sum s_i
//     (mhe.Thresholdizer.AggregateShares), and adds the public-key shares into the collective
//     public key (b, a) = (-a s + e, a). Every trustee computes the same KeyEpoch; they compare
//     its Digest before the coordinator publishes it.
//
// Trust assumption: as in lattigo's mhe, the protocol is secure against passive (honest but
// curious) trustees, up to t-1 of them colluding: nothing proves that a trustee's shares are
// consistent with its public-key share, so a malicious trustee can make the key unusable
// (detected at the first decryption), though not learn more than it could passively. The relay
// sees only sealed shares and public values; a relay that drops or alters a dealing stops the
// ceremony (signatures, digests), it cannot change its outcome.

// Dealing is one trustee's single ceremony message.
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

// Deal runs the dealing step for self, a member of roster.
func Deal(roster *Roster, self *Identity) (*Dealing, error) {
	if roster == nil {
		return nil, fmt.Errorf("he: Deal: nil roster")
	}
	if err := self.valid(); err != nil {
		return nil, err
	}
	if err := roster.check(); err != nil {
		return nil, err
	}
	me := roster.index(self.ID)
	if me < 0 || !slices.Equal(roster.Members[me].KEM, self.Public().KEM) {
		return nil, fmt.Errorf("%w: %q is not on the roster with this identity", ErrCeremony, self.ID)
	}
	digest, err := roster.Digest()
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("he: Shamir polynomial: %w", err)
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
			return nil, fmt.Errorf("%w: member %q: HPKE public key: %v", ErrCeremony, m.ID, err)
		}
		plain := appendPoly(make([]byte, 0, p.polyBytes()), share.Q)
		sealed, err := hpke.Seal(pk, ceremonyKDF(), ceremonyAEAD(), shareInfo(digest, from, m.Point), plain)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("he: sealing share for %q: %w", m.ID, err)
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
		return nil, fmt.Errorf("he: signing dealing: %w", err)
	}
	return d, nil
}

// Finish runs the last step for self: it verifies all dealings (one from every member of
// roster, in any order), and returns self's secret share and the key epoch.
func Finish(roster *Roster, self *Identity, dealings []*Dealing) (*SecretShare, *KeyEpoch, error) {
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
	byPoint, err := verifyDealings(roster, digest, dealings)
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
			return nil, nil, fmt.Errorf("%w: the share from %q does not open: %v", ErrCeremony, m.ID, err)
		}
		if len(plain) != p.polyBytes() || firstUnreduced(p, plain) >= 0 {
			clear(plain)
			return nil, nil, fmt.Errorf("%w: the share from %q is not a polynomial modulo Q", ErrCeremony, m.ID)
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

// verifyDealings checks that dealings are exactly one valid, signed dealing per member.
func verifyDealings(roster *Roster, digest [32]byte, dealings []*Dealing) (map[uint64]*Dealing, error) {
	if len(dealings) != len(roster.Members) {
		return nil, fmt.Errorf("%w: %d dealings for %d trustees", ErrCeremony, len(dealings), len(roster.Members))
	}
	byPoint := make(map[uint64]*Dealing, len(dealings))
	for i, d := range dealings {
		if d == nil {
			return nil, fmt.Errorf("%w: dealing %d is nil", ErrCeremony, i)
		}
		if err := d.check(roster.params, len(roster.Members)); err != nil {
			return nil, fmt.Errorf("dealing %d: %w", i, err)
		}
		if d.RosterDigest != digest {
			return nil, fmt.Errorf("%w: dealing %d was made for another roster", ErrCeremony, i)
		}
		k := slices.IndexFunc(roster.Members, func(m Member) bool { return m.Point == d.From })
		if k < 0 {
			return nil, fmt.Errorf("%w: dealing %d is from Shamir point %d, not on the roster", ErrCeremony, i, d.From)
		}
		if byPoint[d.From] != nil {
			return nil, fmt.Errorf("%w: two dealings from %q", ErrCeremony, roster.Members[k].ID)
		}
		var pub mldsa65.PublicKey
		if err := pub.UnmarshalBinary(roster.Members[k].Sign); err != nil {
			return nil, fmt.Errorf("%w: member %q: %v", ErrCeremony, roster.Members[k].ID, err)
		}
		if !mldsa65.Verify(&pub, d.signedPart(), []byte(dealingContext), d.Signature) {
			return nil, fmt.Errorf("%w: the dealing from %q has a bad signature", ErrCeremony, roster.Members[k].ID)
		}
		byPoint[d.From] = d
	}
	return byPoint, nil
}

// shareInfo is the HPKE info string of the share sealed by point from to point to.
func shareInfo(roster [32]byte, from, to uint64) []byte {
	info := append([]byte("vigil/he/ceremony/share/v1"), roster[:]...)
	info = binary.LittleEndian.AppendUint64(info, from)
	return binary.LittleEndian.AppendUint64(info, to)
}
