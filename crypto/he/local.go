package he

import (
	"fmt"
	"slices"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
)

// LocalCeremony runs the distributed ceremony for trustees ids (Shamir points 1..n) with
// threshold t on one host, through the same Deal and Finish steps and the same sealed
// messages as the distributed ceremony. It is for the in-process demo, tests, and a ceremony
// on one air-gapped machine; in the last case the machine sees every secret while it runs,
// so it must be trusted, wiped afterwards, and the shares carried to the trustees offline.
//
// Because one host holds all shares here, LocalCeremony also checks the result exactly:
// every window of t consecutive trustees (cyclically) reconstructs the same secret, and that
// secret decrypts an encryption of zero under the public key to a small error.
func LocalCeremony(p Params, epoch uint64, ids []string, threshold int) ([]*SecretShare, *KeyEpoch, error) {
	idents := make([]*Identity, len(ids))
	pubs := make([]PublicIdentity, len(ids))
	for i, id := range ids {
		ident, err := NewIdentity(id)
		if err != nil {
			return nil, nil, err
		}
		idents[i], pubs[i] = ident, ident.Public()
	}
	roster, err := NewRoster(p, epoch, threshold, pubs)
	if err != nil {
		return nil, nil, err
	}
	dealings := make([]*Dealing, len(ids))
	for i, ident := range idents {
		if dealings[i], err = Deal(roster, ident); err != nil {
			return nil, nil, err
		}
	}
	shares := make([]*SecretShare, len(ids))
	var key *KeyEpoch
	for i, ident := range idents {
		share, k, err := Finish(roster, ident, dealings)
		if err != nil {
			return nil, nil, err
		}
		if key != nil && share.KeyDigest != shares[0].KeyDigest {
			return nil, nil, fmt.Errorf("%w: trustees %q and %q computed different public keys", ErrCeremony, ids[0], ident.ID)
		}
		shares[i], key = share, k
	}
	if err := CheckShares(key, shares); err != nil {
		return nil, nil, err
	}
	return shares, key, nil
}

// CheckShares checks, with all n shares of key in one place, that every window of t
// consecutive trustees reconstructs the same secret s and that s is the secret of the public
// key. Only a host that is trusted with the whole key may hold all shares; see LocalCeremony.
func CheckShares(key *KeyEpoch, shares []*SecretShare) error {
	if err := key.check(); err != nil {
		return err
	}
	if len(shares) != len(key.Trustees) {
		return fmt.Errorf("%w: %d shares for %d trustees", ErrThreshold, len(shares), len(key.Trustees))
	}
	want, err := key.Digest()
	if err != nil {
		return err
	}
	for i, s := range shares {
		if err := s.check(); err != nil {
			return err
		}
		if s.KeyDigest != want || s.Point != key.Trustees[i].Point {
			return fmt.Errorf("%w: share %d does not belong to trustee %q of this key", ErrCeremony, i, key.Trustees[i].ID)
		}
	}
	p := key.params
	rp := p.rlwe()
	n, t := len(shares), key.Threshold
	var first *rlwe.SecretKey
	for start := range n {
		active := make([]uint64, t)
		for k := range t {
			active[k] = shares[(start+k)%n].Point
		}
		s, err := reconstruct(p, shares, active)
		if err != nil {
			return err
		}
		if first == nil {
			first = s
			continue
		}
		if !first.Value.Q.Equal(&s.Value.Q) {
			return fmt.Errorf("%w: trustees %v reconstruct another secret than the first window", ErrCeremony, active)
		}
	}
	defer erase(first.Value.Q)
	ct := rlwe.NewEncryptor(rp, key.publicKey()).EncryptZeroNew(rp.MaxLevel())
	pt := rlwe.NewDecryptor(rp, first).DecryptNew(ct)
	if pt.IsNTT {
		rp.RingQ().INTT(pt.Value, pt.Value)
	}
	limit := float64(uint64(1) << 24)
	for i := range p.N() {
		if v := p.decodeCoeff(pt.Value.Coeffs[0][i], pt.Value.Coeffs[1][i]); v > limit || v < -limit {
			return fmt.Errorf("%w: the reconstructed secret does not decrypt under the public key (coefficient %d)", ErrCeremony, i)
		}
	}
	return nil
}

// reconstruct adds the t-out-of-t additive shares of the active set: the collective secret.
func reconstruct(p Params, shares []*SecretShare, active []uint64) (*rlwe.SecretKey, error) {
	rp := p.rlwe()
	sum := rlwe.NewSecretKey(rp)
	part := rlwe.NewSecretKey(rp)
	defer erase(part.Value.Q)
	points := make([]mhe.ShamirPublicPoint, len(active))
	for i, x := range active {
		points[i] = mhe.ShamirPublicPoint(x)
	}
	for _, x := range active {
		k := slices.IndexFunc(shares, func(s *SecretShare) bool { return s.Point == x })
		if k < 0 {
			return nil, fmt.Errorf("%w: no share for Shamir point %d", ErrThreshold, x)
		}
		s := shares[k]
		all := make([]mhe.ShamirPublicPoint, len(s.Trustees))
		for i, tr := range s.Trustees {
			all[i] = mhe.ShamirPublicPoint(tr.Point)
		}
		tsk := mhe.NewThresholdizer(rp).AllocateThresholdSecretShare()
		unflatten(tsk.Q, s.value)
		cmb := mhe.NewCombiner(rp, mhe.ShamirPublicPoint(s.Point), all, s.Threshold)
		if err := cmb.GenAdditiveShare(points, mhe.ShamirPublicPoint(s.Point), tsk, part); err != nil {
			return nil, fmt.Errorf("he: additive share: %w", err)
		}
		erase(tsk.Q)
		rp.RingQ().Add(sum.Value.Q, part.Value.Q, sum.Value.Q)
	}
	return sum, nil
}
