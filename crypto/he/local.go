package he

import (
	"crypto/rand"
	"fmt"
	"math"
	"slices"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
)

// LocalResult is everything a ceremony run on one host produces.
type LocalResult struct {
	// Roster is the ceremony's roster; its members' PublicIdentity.Sign keys verify Approvals.
	Roster *Roster
	// Identities are the trustees' ceremony identities, in the order of the ids given. They
	// are secret, like Shares: each belongs with its trustee.
	Identities []*Identity
	Shares     []*SecretShare
	Key        *KeyEpoch
	// Approvals are every trustee's approval of Key, made after its own test decryption
	// succeeded, in the order of the ids given.
	Approvals []*Approval
}

// RunLocalCeremony runs the distributed ceremony for trustees ids (Shamir points 1..n) with
// threshold t on one host, through the same steps and the same signed and sealed messages as
// the distributed ceremony: Deal (commit), Reveal, Finish, then every trustee's test
// decryption (NewKeyCheck, Respond, Approve). It is for the in-process demo, `vigil setup`,
// tests, and a ceremony on one air-gapped machine; in the last case the machine sees every
// secret while it runs, so it must be trusted, wiped afterwards, and the shares and
// identities carried to the trustees offline.
//
// Because one host holds all shares here, it also runs CheckShares.
func RunLocalCeremony(p Params, epoch uint64, ids []string, threshold int) (*LocalResult, error) {
	res := &LocalResult{}
	pubs := make([]PublicIdentity, len(ids))
	for i, id := range ids {
		ident, err := NewIdentity(id)
		if err != nil {
			return nil, err
		}
		res.Identities = append(res.Identities, ident)
		pubs[i] = ident.Public()
	}
	roster, err := NewRoster(p, epoch, threshold, pubs)
	if err != nil {
		return nil, err
	}
	res.Roster = roster
	dealings := make([]*Dealing, len(ids))
	commitments := make([]*Commitment, len(ids))
	for i, ident := range res.Identities {
		if dealings[i], commitments[i], err = Deal(roster, ident); err != nil {
			return nil, err
		}
	}
	for _, d := range dealings {
		if err := Reveal(roster, d, commitments); err != nil {
			return nil, err
		}
	}
	for i, ident := range res.Identities {
		share, key, err := Finish(roster, ident, commitments, dealings)
		if err != nil {
			return nil, err
		}
		if i > 0 && share.KeyDigest != res.Shares[0].KeyDigest {
			return nil, fmt.Errorf("%w: trustees %q and %q computed different public keys", ErrCeremony, ids[0], ident.ID)
		}
		res.Shares, res.Key = append(res.Shares, share), key
	}
	for i, ident := range res.Identities {
		kc, err := NewKeyCheck(roster, res.Key, ident)
		if err != nil {
			return nil, err
		}
		var responses []*Response
		responders := kc.Responders()
		for j, other := range res.Identities {
			if !slices.ContainsFunc(responders, func(m Member) bool { return m.Point == roster.Members[j].Point }) {
				continue
			}
			r, err := Respond(roster, res.Key, res.Shares[j], other, kc.Challenge())
			if err != nil {
				return nil, err
			}
			responses = append(responses, r)
		}
		a, err := kc.Approve(res.Shares[i], ident, responses)
		if err != nil {
			return nil, err
		}
		res.Approvals = append(res.Approvals, a)
	}
	if err := CheckShares(res.Key, res.Shares); err != nil {
		return nil, err
	}
	return res, nil
}

// LocalCeremony is RunLocalCeremony for callers that need only the shares and the key: the
// key has passed every trustee's test decryption, but the identities that could sign it are
// dropped.
func LocalCeremony(p Params, epoch uint64, ids []string, threshold int) ([]*SecretShare, *KeyEpoch, error) {
	res, err := RunLocalCeremony(p, epoch, ids, threshold)
	if err != nil {
		return nil, nil, err
	}
	return res.Shares, res.Key, nil
}

// CheckShares checks, with all n shares of key in one place, that every window of t
// consecutive trustees (cyclically) decrypts, through Decryptor and Combine, a fresh
// encryption of a random message under key back to that message. Only a host that is trusted
// with the whole key may hold all shares; see RunLocalCeremony.
func CheckShares(key *KeyEpoch, shares []*SecretShare) error {
	if key == nil {
		return fmt.Errorf("he: CheckShares: nil key epoch")
	}
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
	decs := make([]*Decryptor, len(shares))
	for i, s := range shares {
		if s == nil {
			return fmt.Errorf("%w: share %d is nil", ErrThreshold, i)
		}
		if err := s.check(); err != nil {
			return err
		}
		if s.KeyDigest != want || s.Point != key.Trustees[i].Point {
			return fmt.Errorf("%w: share %d does not belong to trustee %q of this key", ErrCeremony, i, key.Trustees[i].ID)
		}
		if decs[i], err = NewDecryptor(s); err != nil {
			return err
		}
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return fmt.Errorf("he: randomness: %w", err)
	}
	msg := challengeMessage(key.params, seed)
	enc, err := NewEncryptor(key)
	if err != nil {
		return err
	}
	b := UpdateBinding(key.Epoch, challengeRound, "check-shares", nil)
	cts, err := enc.Encrypt(msg, 1, b)
	if err != nil {
		return err
	}
	acc, err := NewAccumulator(key.params, key.Epoch, len(msg))
	if err != nil {
		return err
	}
	if err := acc.Add(cts, b); err != nil {
		return err
	}
	sum, err := acc.Seal(challengeRound)
	if err != nil {
		return err
	}
	n, t := len(shares), key.Threshold
	bound := key.params.ErrorBound(1, n, t)
	for start := range n {
		active := make([]uint64, t)
		for k := range t {
			active[k] = shares[(start+k)%n].Point
		}
		answers := make([][][]byte, t)
		for k := range t {
			if answers[k], err = decs[(start+k)%n].Share(sum, active); err != nil {
				return err
			}
		}
		got, err := Combine(key, sum, answers, 1)
		if err != nil {
			return err
		}
		for i := range msg {
			if d := math.Abs(got[i] - msg[i]); !(d <= bound) {
				return fmt.Errorf("%w: trustees %v do not decrypt under the public key (coefficient %d is off by %.3g)", ErrKeyCheck, active, i, d)
			}
		}
	}
	return nil
}

// reconstruct adds the t-out-of-t additive shares of the active set: the collective secret.
// Only tests use it, to look at the secret a set of shares stands for.
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
