package he

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// The threshold test decryption, the ceremony's last step (after Finish, before anyone signs
// the key epoch). Every trustee j, for itself:
//
//  1. NewKeyCheck: j draws a random message m_j and keeps it secret, and publishes a
//     Challenge with a fresh nonce. The challenge fixes the test ciphertext's c1 = u a + e1:
//     u and e1 are drawn from a keystream keyed by the hash of the signed challenge, so every
//     trustee computes the same c1 and nobody chooses it. Only j computes the c0 = u b + e0 +
//     m_j that goes with it. The challenge tests every set of t trustees with j in it
//     (KeyCheckSets; a roster with more than MaxKeyCheckSets of them is refused).
//  2. Respond: every other trustee of those sets derives c1 and computes its decryption share
//     of it for each set it is in, with its secret share, through the same Decryptor.Share the
//     trustee service uses, and returns them signed.
//  3. KeyCheck.Approve: once every response is in, j computes its own decryption shares, only
//     now, and for every set adds the t shares to its c0 (Combine) and compares the result
//     with m_j. Only if every set gives m_j back does j sign its Approval of the key epoch's
//     digest.
//
// Why this catches a rogue key: the trustees' shares reconstruct s = sum of the dealt
// secrets, so the test ciphertext decrypts to m_j only if the public key really is (-a s + e,
// a). A dealer whose public-key share is that of its secret plus some delta makes every set
// fail, unless it or a colluder is in the set and adds delta c1 to its share, which makes
// that set pass. So j tests every set with it, not one: a set of honest trustees has nobody to
// correct it, and with at most t-1 colluders there is one whenever n >= 2t-1
// (TestAttackColludersCorrectARogueKey: with one set per challenge, bob's set held the rogue
// dealer, bob approved, and the key had its 2 of 3). When n < 2t-1 every set of t holds a
// colluder, who can withhold its share whatever the key. A rogue trustee that knew the
// secret of a rogue key could decrypt j's ciphertext itself, but to make j's check pass it
// would have to predict j's own shares, which j computes after all responses arrived and
// never publishes; and it cannot answer with m_j, which only j knows.
//
// Why c1 is derived and not sent: a decryption share is s_i c1 plus flooding noise, and the
// flooding hides s only when c1 is the c1 of an honest encryption. In the first version the
// challenge carried the ciphertext, so t-1 colluding trustees could send c1 = 2^79: the
// honest trustee's share, added to theirs, was 2^79 s plus noise under 2^76, the whole
// collective secret (TestAttackChallengeChoosesCiphertext). A derived c1 is u a + e1 with u
// and e1 as small as an Encryptor's: the shares of it reveal no more than those of a device's
// update, however many nonces a colluder tries.
//
// What j learns: from each other trustee, one decryption share of one honest ciphertext per
// set, each with its own flooding noise (fewer than MaxKeyCheckSets shares per challenge, so
// under 70 times the statistical distance of one). Each trustee answers each other trustee's
// challenge once (the CLI keeps a record), and a challenge from anyone but a roster member is
// refused.

// ErrKeyCheck reports a test decryption that did not give back the challenger's message: the
// key epoch must not be approved.
var ErrKeyCheck = errors.New("he: test decryption failed")

// challengeRound is the round challenge sums are sealed under. The coordinator numbers rounds
// from 1 (round.State refuses 0), so a challenge or its decryption shares can never be passed
// off as a round's sum or shares of it: both are bound to the round.
const challengeRound = 0

// KeyCheck is a challenger's test decryption in progress: the challenge it published and the
// seed of its secret message. It is secret until Approve.
type KeyCheck struct {
	roster    *Roster
	key       *KeyEpoch
	challenge *Challenge
	seed      [32]byte
}

// NewKeyCheck starts self's test decryption of key, the outcome of the ceremony of roster:
// it draws a secret message and encrypts it under key. Publish Challenge(); keep the KeyCheck
// (MarshalBinary) secret until Approve.
func NewKeyCheck(roster *Roster, key *KeyEpoch, self *Identity) (*KeyCheck, error) {
	if err := checkRosterKey(roster, key); err != nil {
		return nil, err
	}
	me, err := rosterMember(roster, self)
	if err != nil {
		return nil, err
	}
	kc := &KeyCheck{roster: roster, key: key}
	if _, err := rand.Read(kc.seed[:]); err != nil {
		return nil, fmt.Errorf("he: randomness: %w", err)
	}
	c := &Challenge{Epoch: key.Epoch, From: me.Point, params: key.params}
	if _, err := rand.Read(c.Nonce[:]); err != nil {
		return nil, fmt.Errorf("he: randomness: %w", err)
	}
	if c.KeyDigest, err = key.Digest(); err != nil {
		return nil, err
	}
	if c.Signature, err = signAs(self, c.signedPart(), challengeContext); err != nil {
		return nil, err
	}
	kc.challenge = c
	return kc, nil
}

// Challenge returns the challenge to publish.
func (kc *KeyCheck) Challenge() *Challenge { return kc.challenge }

// Responders returns the trustees that must answer the challenge: every other member of its
// active sets, in roster order.
func (kc *KeyCheck) Responders() []Member {
	sets := KeyCheckSets(kc.roster, kc.challenge.From)
	var out []Member
	for _, m := range kc.roster.Members {
		if m.Point != kc.challenge.From && len(setsWith(sets, m.Point)) > 0 {
			out = append(out, m)
		}
	}
	return out
}

// Respond computes self's decryption shares of the test ciphertext of another trustee's
// challenge to key, the outcome of roster's ceremony that share belongs to: one for each of the
// challenge's active sets (KeyCheckSets) that holds self, in their order. It refuses a
// challenge that is not signed by a member of roster, is for another key, comes from self, or
// has no active set with self. A trustee answers challenges only during the ceremony, at most
// one per challenger.
func Respond(roster *Roster, key *KeyEpoch, share *SecretShare, self *Identity, c *Challenge) (*Response, error) {
	if roster == nil || share == nil || c == nil {
		return nil, fmt.Errorf("he: Respond: nil roster, share or challenge")
	}
	// The roster's CRS gives the a of the test ciphertext's c1: a roster that is not the key's
	// would have this trustee decrypt a c1 that is no encryption under the key.
	if err := checkRosterKey(roster, key); err != nil {
		return nil, err
	}
	if digest, err := key.Digest(); err != nil || digest != share.KeyDigest {
		return nil, fmt.Errorf("%w: the share is not of this key epoch", ErrCeremony)
	}
	me, err := rosterMember(roster, self)
	if err != nil {
		return nil, err
	}
	if err := share.check(); err != nil {
		return nil, err
	}
	if share.Point != me.Point || share.Epoch != roster.Epoch || !slices.Equal(share.Trustees, roster.trustees()) {
		return nil, fmt.Errorf("%w: the share is not %q's share of the key of this roster", ErrCeremony, self.ID)
	}
	from, err := verifyChallenge(roster, share.params, c)
	if err != nil {
		return nil, err
	}
	sets := setsWith(KeyCheckSets(roster, c.From), me.Point)
	switch {
	case c.KeyDigest != share.KeyDigest:
		return nil, trusteeErr(from, ErrCeremony, "the challenge from %q is for key %x, this share is of key %x", from.ID, c.KeyDigest[:8], share.KeyDigest[:8])
	case c.From == me.Point:
		return nil, fmt.Errorf("%w: a trustee does not answer its own challenge (it adds its share last, in Approve)", ErrCeremony)
	case len(sets) == 0:
		return nil, trusteeErr(from, ErrCeremony, "the challenge from %q does not ask %q to answer", from.ID, self.ID)
	}
	sum, err := c.testSum(key.CRS, nil, nil)
	if err != nil {
		return nil, trusteeErr(from, ErrCeremony, "the challenge from %q: %v", from.ID, err)
	}
	dec, err := NewDecryptor(share)
	if err != nil {
		return nil, err
	}
	r := &Response{ChallengeDigest: c.Digest(), From: me.Point, params: share.params}
	for _, set := range sets {
		shares, err := dec.Share(sum, set)
		if err != nil {
			return nil, fmt.Errorf("he: decryption share of %q's challenge: %w", from.ID, err)
		}
		r.Shares = append(r.Shares, shares[0])
	}
	if r.Signature, err = signAs(self, r.signedPart(), responseContext); err != nil {
		return nil, err
	}
	return r, nil
}

// Approve finishes self's test decryption: it checks that responses hold one signed response
// to self's challenge from every other trustee of its active sets (a *TrusteeError names the
// one missing or at fault), computes self's own decryption shares only now, and, for every
// active set, adds its t shares and compares the decryption with the secret message. If every
// coefficient is within Params.ErrorBound for every set it returns self's Approval of the key
// epoch; otherwise an error wrapping ErrKeyCheck, and the key epoch must not be signed.
func (kc *KeyCheck) Approve(share *SecretShare, self *Identity, responses []*Response) (*Approval, error) {
	if kc == nil || kc.challenge == nil || share == nil {
		return nil, fmt.Errorf("he: Approve: nil key check or share")
	}
	c, roster, key := kc.challenge, kc.roster, kc.key
	me, err := rosterMember(roster, self)
	if err != nil {
		return nil, err
	}
	if err := share.check(); err != nil {
		return nil, err
	}
	if me.Point != c.From || share.Point != c.From || share.KeyDigest != c.KeyDigest {
		return nil, fmt.Errorf("%w: the challenge, the share and the identity are not all %q's, of key %x", ErrCeremony, self.ID, c.KeyDigest[:8])
	}
	sets := KeyCheckSets(roster, c.From)
	byPoint, err := verifyResponses(roster, c, sets, responses)
	if err != nil {
		return nil, err
	}
	sum, err := c.testSum(roster.CRS, key, &kc.seed)
	if err != nil {
		return nil, err
	}
	// Self's own shares, computed after every other share is fixed: a rogue responder cannot
	// have adapted its shares to them.
	dec, err := NewDecryptor(share)
	if err != nil {
		return nil, err
	}
	want := challengeMessage(key.params, kc.seed)
	bound := key.params.ErrorBound(1, len(key.Trustees), key.Threshold)
	given := make(map[uint64]int) // how many of its shares each responder's sets have used
	for _, set := range sets {
		own, err := dec.Share(sum, set)
		if err != nil {
			return nil, err
		}
		answers := [][][]byte{own}
		for _, x := range set {
			if x != me.Point {
				answers = append(answers, [][]byte{byPoint[x].Shares[given[x]]})
				given[x]++
			}
		}
		got, err := Combine(key, sum, answers, 1)
		if err != nil {
			return nil, fmt.Errorf("%w: combining the shares of %q's challenge for trustees %v: %v", ErrKeyCheck, self.ID, set, err)
		}
		for i := range want {
			if d := math.Abs(got[i] - want[i]); !(d <= bound) {
				return nil, fmt.Errorf("%w: %q's challenge decrypts wrongly with trustees %v (coefficient %d is off by %.3g, the bound is %.3g): the shares are not shares of this key's secret",
					ErrKeyCheck, self.ID, set, i, d, bound)
			}
		}
	}
	a := &Approval{KeyDigest: c.KeyDigest, Trustee: self.ID}
	if a.Signature, err = signAs(self, a.KeyDigest[:], ApprovalContext); err != nil {
		return nil, err
	}
	return a, nil
}

// verifyResponses checks that responses are exactly one signed response to c from every
// trustee of sets other than the challenger, each with one share per set that holds it.
func verifyResponses(roster *Roster, c *Challenge, sets [][]uint64, responses []*Response) (map[uint64]*Response, error) {
	digest := c.Digest()
	byPoint := make(map[uint64]*Response, len(roster.Members))
	for i, r := range responses {
		if r == nil {
			return nil, fmt.Errorf("%w: response %d is nil", ErrCeremony, i)
		}
		if err := r.check(c.params); err != nil {
			return nil, fmt.Errorf("response %d: %w", i, err)
		}
		k := slices.IndexFunc(roster.Members, func(m Member) bool { return m.Point == r.From })
		if k < 0 {
			return nil, fmt.Errorf("%w: response %d is from Shamir point %d, not on the roster", ErrCeremony, i, r.From)
		}
		m := roster.Members[k]
		mine := len(setsWith(sets, r.From))
		switch {
		case r.ChallengeDigest != digest:
			return nil, trusteeErr(m, ErrCeremony, "the response from %q answers another challenge", m.ID)
		case r.From == c.From || mine == 0:
			return nil, trusteeErr(m, ErrCeremony, "%q was not asked to answer this challenge", m.ID)
		case byPoint[r.From] != nil:
			return nil, trusteeErr(m, ErrCeremony, "two responses from %q", m.ID)
		case !verifyAs(m, r.signedPart(), responseContext, r.Signature):
			return nil, trusteeErr(m, ErrCeremony, "the response from %q is not signed by %q's identity key", m.ID, m.ID)
		case len(r.Shares) != mine:
			return nil, trusteeErr(m, ErrCeremony, "the response from %q has %d decryption shares, want one for each of the %d sets it is in", m.ID, len(r.Shares), mine)
		}
		byPoint[r.From] = r
	}
	for _, m := range roster.Members {
		if m.Point != c.From && len(setsWith(sets, m.Point)) > 0 && byPoint[m.Point] == nil {
			return nil, trusteeErr(m, ErrCeremony, "no response from %q", m.ID)
		}
	}
	return byPoint, nil
}

// verifyChallenge checks c's shape and signature against roster and returns its challenger.
func verifyChallenge(roster *Roster, p Params, c *Challenge) (Member, error) {
	if err := c.check(p); err != nil {
		return Member{}, err
	}
	k := slices.IndexFunc(roster.Members, func(m Member) bool { return m.Point == c.From })
	if k < 0 {
		return Member{}, fmt.Errorf("%w: challenge from Shamir point %d, not on the roster", ErrCeremony, c.From)
	}
	m := roster.Members[k]
	if c.Epoch != roster.Epoch {
		return Member{}, trusteeErr(m, ErrEpoch, "the challenge from %q is for key epoch %d, the roster's is %d", m.ID, c.Epoch, roster.Epoch)
	}
	if !verifyAs(m, c.signedPart(), challengeContext, c.Signature) {
		return Member{}, trusteeErr(m, ErrCeremony, "the challenge from %q is not signed by %q's identity key", m.ID, m.ID)
	}
	return m, nil
}

// MaxKeyCheckSets bounds the active sets one challenge tests, C(n-1, t-1) for n trustees and
// threshold t: a roster needing more is refused (NewRoster, ParseRoster), since testing only
// some would leave the sets without a colluder untested. Every roster of up to 9 trustees is
// within it (C(8, 4) = 70), and so are larger ones with a threshold near 2 or near n.
const MaxKeyCheckSets = 70

// KeyCheckSets returns the active sets the challenge of the trustee at point tests: every set
// of t trustees of roster with it, each sorted, ordered by the other members' positions in the
// roster counted cyclically from the challenger (so the first is it and the t-1 trustees after
// it). Testing every such set, not one, is what catches a dealer whose public-key share is not
// of the secret it dealt when its t-1 colluders answer with shares that correct for it: the
// sets without a colluder still fail.
func KeyCheckSets(roster *Roster, point uint64) [][]uint64 {
	n, t := len(roster.Members), roster.Threshold
	k := slices.IndexFunc(roster.Members, func(m Member) bool { return m.Point == point })
	if k < 0 || t < 1 || t > n {
		return nil
	}
	others := make([]uint64, 0, n-1)
	for i := 1; i < n; i++ {
		others = append(others, roster.Members[(k+i)%n].Point)
	}
	var sets [][]uint64
	chosen := make([]uint64, 0, t-1)
	var pick func(from int)
	pick = func(from int) {
		if len(chosen) == t-1 {
			set := append([]uint64{point}, chosen...)
			slices.Sort(set)
			sets = append(sets, set)
			return
		}
		for i := from; i <= len(others)-(t-1-len(chosen)); i++ {
			chosen = append(chosen, others[i])
			pick(i + 1)
			chosen = chosen[:len(chosen)-1]
		}
	}
	pick(0)
	return sets
}

// keyCheckSetCount is C(n-1, t-1), the number of sets KeyCheckSets returns.
func keyCheckSetCount(n, t int) int {
	c := 1
	for i := 1; i <= t-1; i++ {
		c = c * (n - t + i) / i
	}
	return c
}

// setsWith returns the sets that hold point, in order.
func setsWith(sets [][]uint64, point uint64) [][]uint64 {
	var out [][]uint64
	for _, s := range sets {
		if slices.Contains(s, point) {
			out = append(out, s)
		}
	}
	return out
}

// testSum returns the test ciphertext of c as the one-contributor sum of round challengeRound
// that Decryptor.Share and Combine take. Its c1 = u a + e1, with a the public key's uniform
// polynomial (from crs), and u (ternary) and e1 (Gaussian) drawn as an Encryptor draws them,
// from an AES-256-CTR keystream keyed by the SHA-256 of c's signed part. With the challenger's
// key and seed its c0 = u b + e0 + m, with m the seed's challengeMessage and e0 drawn from a
// keystream keyed by the seed; without them c0 is zero, which decryption shares do not read.
func (c *Challenge) testSum(crs [32]byte, key *KeyEpoch, seed *[32]byte) (*Sum, error) {
	p := c.params
	rp := p.rlwe()
	ringQ := rp.RingQ()
	public := sha256.Sum256(append([]byte("vigil/he/challenge-c1/v2:"), c.signedPart()...))
	var rng ctrDRBG
	if err := rng.keyWith(&public); err != nil {
		return nil, err
	}
	xs, err := ring.NewSampler(&rng, ringQ, rp.Xs(), false)
	if err != nil {
		return nil, fmt.Errorf("he: ternary sampler: %w", err)
	}
	xe, err := ring.NewSampler(&rng, ringQ, rp.Xe(), false)
	if err != nil {
		return nil, fmt.Errorf("he: Gaussian sampler: %w", err)
	}
	u, c0, c1 := ringQ.NewPoly(), ringQ.NewPoly(), ringQ.NewPoly()
	xs.Read(u)
	ringQ.NTT(u, u)
	ringQ.MulCoeffsMontgomery(u, sampleCRP(p, crs).Value.Q, c1)
	ringQ.INTT(c1, c1)
	xe.ReadAndAdd(c1)
	if key != nil {
		if key.CRS != crs || key.params.digest != p.digest {
			return nil, fmt.Errorf("%w: the key epoch is not the challenge's", ErrCeremony)
		}
		secret := sha256.Sum256(append([]byte("vigil/he/challenge-e0/v2:"), seed[:]...))
		var srng ctrDRBG
		err := srng.keyWith(&secret)
		clear(secret[:])
		if err != nil {
			return nil, err
		}
		xe0, err := ring.NewSampler(&srng, ringQ, rp.Xe(), false)
		if err != nil {
			return nil, fmt.Errorf("he: Gaussian sampler: %w", err)
		}
		ringQ.MulCoeffsMontgomery(u, key.publicKey().Value[0].Q, c0)
		ringQ.INTT(c0, c0)
		xe0.ReadAndAdd(c0)
		srng.erase()
		m := ringQ.NewPoly()
		for i, v := range challengeMessage(p, *seed) {
			m.Coeffs[0][i], m.Coeffs[1][i] = p.encodeCoeff(v * p.scale) // clip norm 1
		}
		ringQ.Add(c0, m, c0)
		erase(m)
	}
	erase(u)
	h := blobHeader{kind: kindSum, epoch: c.Epoch, binding: SumBinding(c.Epoch, challengeRound, 1), index: 0, count: 1, dim: uint64(p.N())}
	blob, err := appendBlob(make([]byte, 0, blobSize(p, 2)), p, h, c0.Coeffs, c1.Coeffs)
	if err != nil {
		return nil, err
	}
	return ParseSum(p, c.Epoch, challengeRound, 1, [][]byte{blob})
}

// challengeMessage expands seed into the challenge's message: one ciphertext's worth of
// values uniform in [-1, 1) (ChaCha8 keyed with the seed), about 40 unpredictable bits per
// coefficient once encoded, so no guess passes the comparison.
func challengeMessage(p Params, seed [32]byte) []float64 {
	rng := mrand.New(mrand.NewChaCha8(seed))
	msg := make([]float64, p.N())
	for i := range msg {
		msg[i] = 2*rng.Float64() - 1
	}
	return msg
}

// checkRosterKey checks that key is the outcome of roster's ceremony.
func checkRosterKey(roster *Roster, key *KeyEpoch) error {
	if roster == nil || key == nil {
		return fmt.Errorf("he: nil roster or key epoch")
	}
	if err := roster.check(); err != nil {
		return err
	}
	if err := key.check(); err != nil {
		return err
	}
	if key.params.digest != roster.params.digest || key.Epoch != roster.Epoch || key.Threshold != roster.Threshold ||
		key.CRS != roster.CRS || !slices.Equal(key.Trustees, roster.trustees()) {
		return fmt.Errorf("%w: the key epoch is not the outcome of this roster's ceremony", ErrCeremony)
	}
	return nil
}

// rosterMember returns self's entry on roster, refusing an identity whose keys differ.
func rosterMember(roster *Roster, self *Identity) (Member, error) {
	if err := self.valid(); err != nil {
		return Member{}, err
	}
	k := roster.index(self.ID)
	pub := self.Public()
	if k < 0 || !slices.Equal(roster.Members[k].KEM, pub.KEM) || !slices.Equal(roster.Members[k].Sign, pub.Sign) {
		return Member{}, fmt.Errorf("%w: %q is not on the roster with this identity", ErrCeremony, self.ID)
	}
	return roster.Members[k], nil
}

// signAs signs msg with self's ML-DSA key under one of the ceremony's contexts.
func signAs(self *Identity, msg []byte, context string) ([]byte, error) {
	out := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(self.sig, msg, []byte(context), true, out); err != nil {
		return nil, fmt.Errorf("he: signing: %w", err)
	}
	return out, nil
}

// verifyAs checks signature on msg under m's ML-DSA key.
func verifyAs(m Member, msg []byte, context string, signature []byte) bool {
	var pub mldsa65.PublicKey
	if err := pub.UnmarshalBinary(m.Sign); err != nil {
		return false
	}
	return mldsa65.Verify(&pub, msg, []byte(context), signature)
}
