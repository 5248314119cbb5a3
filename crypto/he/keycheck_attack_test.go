package he

import (
	"encoding/binary"
	"math"
	"math/big"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// TestAttackChallengeChoosesCiphertext: t-1 colluding trustees try to learn the collective
// secret key from the test decryption. In the first version of the challenge its maker sent
// the ciphertext, and a colluder sent c1 = 2^79 (c0 = 0): the honest trustee's share plus the
// colluders' was 2^79 s plus flooding noise under 2^76, so rounding it divided by 2^79 gave
// every coefficient of s, and that key decrypted a device's update alone (found by a review).
// Now such a challenge does not parse, and the one thing a challenger chooses, its nonce,
// gives a c1 that is an honest encryption's: the same recovery, on every nonce tried, gives
// no key.
func TestAttackChallengeChoosesCiphertext(t *testing.T) {
	r := newKeyCheckRun(t, 3, 2)
	p := r.params
	colluder, honest := 0, 1
	active := []uint64{r.roster.Members[colluder].Point, r.roster.Members[honest].Point}
	slices.Sort(active)
	const shift = 79

	// The first version's challenge, carrying the crafted ciphertext.
	n := p.N()
	c1 := make([]uint64, p.polyLen())
	two := new(big.Int).Lsh(big.NewInt(1), shift)
	for l, q := range p.q {
		c1[l*n] = new(big.Int).Mod(two, new(big.Int).SetUint64(q)).Uint64()
	}
	h := blobHeader{kind: kindSum, epoch: r.key.Epoch, binding: SumBinding(r.key.Epoch, challengeRound, 1), count: 1, dim: uint64(n)}
	blob, err := appendBlob(nil, p, h, split(make([]uint64, p.polyLen()), n), split(c1, n))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := r.key.Digest()
	v1 := append([]byte(challengeMagic), 1)
	v1 = append(v1, p.digest[:]...)
	v1 = append(v1, digest[:]...)
	v1 = binary.LittleEndian.AppendUint64(v1, r.key.Epoch)
	v1 = binary.LittleEndian.AppendUint64(v1, active[0])
	v1 = binary.LittleEndian.AppendUint16(v1, uint16(len(active)))
	for _, x := range active {
		v1 = binary.LittleEndian.AppendUint64(v1, x)
	}
	v1 = appendByteList(v1, [][]byte{blob})
	sig, err := signAs(r.idents[colluder], v1, "vigil/he/challenge/v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseChallenge(p, append(v1, sig...)); !isErr(err, ErrMalformed) {
		t.Fatalf("a challenge carrying its own ciphertext: %v, want ErrMalformed", err)
	}

	// The current challenge, nonce after nonce.
	update := randomUpdate(mrand.New(mrand.NewPCG(1, 2)), 300, 1)
	enc, err := NewEncryptor(r.key)
	if err != nil {
		t.Fatal(err)
	}
	victim, err := enc.Encrypt(update, 1, UpdateBinding(r.key.Epoch, 5, "victim", nonce(1)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		c := &Challenge{KeyDigest: digest, Epoch: r.key.Epoch, From: r.roster.Members[colluder].Point, params: p}
		binary.LittleEndian.PutUint64(c.Nonce[:], uint64(i))
		if c.Signature, err = signAs(r.idents[colluder], c.signedPart(), challengeContext); err != nil {
			t.Fatal(err)
		}
		resp, err := Respond(r.roster, r.key, r.shares[honest], r.idents[honest], c)
		if err != nil {
			t.Fatalf("the honest trustee refused a well-formed challenge: %v", err)
		}
		sum, err := c.testSum(r.roster.CRS, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := NewDecryptor(r.shares[colluder])
		if err != nil {
			t.Fatal(err)
		}
		own, err := dec.Share(sum, active)
		if err != nil {
			t.Fatal(err)
		}
		acc := make([]uint64, p.polyLen())
		for _, b := range [][]byte{own[0], resp.Shares[0]} {
			_, body, err := parseBlob(p, b)
			if err != nil {
				t.Fatal(err)
			}
			addRNS(p, acc, body)
		}
		key := make([]int64, n)
		small := true
		for j := range key {
			v := math.Round(p.decodeCoeff(acc[j], acc[n+j]) / math.Ldexp(1, shift))
			small = small && math.Abs(v) <= 64 // a sum of the trustees' ternary secrets
			key[j] = int64(v)
		}
		if worst := decryptWithKey(t, p, victim[0], key, update); small || worst < 1e-3 {
			t.Fatalf("nonce %d: the colluder recovered a key (all coefficients small: %v) that decrypts the victim's update to within %.3g", i, small, worst)
		}
	}
}

// decryptWithKey decrypts blob, a device's ciphertext, with the ternary key s (coefficients),
// as one holding the collective secret would, and returns its largest error against want.
func decryptWithKey(t *testing.T, p Params, blob []byte, s []int64, want []float64) float64 {
	t.Helper()
	ringQ := p.rlwe().RingQ()
	_, body, err := parseBlob(p, blob)
	if err != nil {
		t.Fatal(err)
	}
	flat0, flat1 := make([]uint64, p.polyLen()), make([]uint64, p.polyLen())
	readCoeffs(flat0, body[:p.polyBytes()])
	readCoeffs(flat1, body[p.polyBytes():])
	c0, c1, key := ringQ.NewPoly(), ringQ.NewPoly(), ringQ.NewPoly()
	unflatten(c0, flat0)
	unflatten(c1, flat1)
	for l, q := range p.q {
		for i, v := range s {
			key.Coeffs[l][i] = uint64((v%int64(q) + int64(q)) % int64(q))
		}
	}
	ringQ.NTT(c1, c1)
	ringQ.NTT(key, key)
	ringQ.MulCoeffsBarrett(c1, key, c1)
	ringQ.INTT(c1, c1)
	ringQ.Add(c0, c1, c0)
	var worst float64
	for i, v := range want {
		worst = max(worst, math.Abs(p.decodeCoeff(c0.Coeffs[0][i], c0.Coeffs[1][i])/p.scale-v))
	}
	return worst
}

// TestAttackColludersCorrectARogueKey: carol deals Shamir shares of her secret s_c but
// publishes the public-key share of s_c + delta, so the key's secret is not what the shares
// reconstruct and no set of honest trustees can decrypt under it. When she answers a test
// decryption she adds delta c1 to her shares, which makes every set with her decrypt
// correctly. A challenge used to test one set, the challenger and the t-1 after it: bob's was
// {bob, carol}, so bob approved, and with carol's own approval the rogue key had the 2 of 3 it
// needed (a review showed the same for 2 colluders of a 3-of-5). Every set with the
// challenger is tested now, {alice, bob} among them, which carol is not in to correct.
func TestAttackColludersCorrectARogueKey(t *testing.T) {
	c := newCeremonyRun(t, 3, 2)
	const carol = 2
	var delta ring.Poly
	c.dealings[carol], c.commitments[carol], delta = rogueDealing(t, c.idents[carol], c.roster, c.dealings[carol])
	shares, key := c.finish(t)
	r := &keyCheckRun{ceremonyRun: c, shares: shares, key: key}
	for i, ident := range r.idents[:carol] {
		kc, err := NewKeyCheck(r.roster, r.key, ident)
		if err != nil {
			t.Fatal(err)
		}
		responses := r.respond(t, kc)
		for k, resp := range responses {
			if resp.From == r.roster.Members[carol].Point {
				responses[k] = correctedResponse(t, r.params, kc.Challenge(), r.key.CRS, resp, delta, r.idents[carol])
			}
		}
		if a, err := kc.Approve(r.shares[i], ident, responses); a != nil || !isErr(err, ErrKeyCheck) {
			t.Errorf("%s approved the rogue key carol corrects for (%v)", ident.ID, err)
		}
	}
}

// rogueDealing makes d's public-key share that of the dealer's secret plus delta, with its
// Shamir shares unchanged, signed and committed to by the dealer. It returns delta (NTT,
// Montgomery form, as lattigo keeps secrets).
func rogueDealing(t *testing.T, dealer *Identity, roster *Roster, d *Dealing) (*Dealing, *Commitment, ring.Poly) {
	t.Helper()
	p := roster.params
	rp := p.rlwe()
	ringQ := rp.RingQ()
	delta := rlwe.NewKeyGenerator(rp).GenSecretKeyNew()
	ckg := mhe.NewPublicKeyGenProtocol(rp)
	extra := ckg.AllocateShare()
	ckg.GenShare(delta, sampleCRP(p, roster.CRS), &extra) // -a delta + e
	pk := ringQ.NewPoly()
	unflatten(pk, d.PKShare)
	ringQ.Add(pk, extra.Value.Q, pk)
	ringQ.Reduce(pk, pk)
	rogue := *d
	rogue.PKShare = flatten(pk)
	resign(t, dealer, &rogue)
	cm, err := commit(dealer, &rogue)
	if err != nil {
		t.Fatal(err)
	}
	return &rogue, cm, delta.Value.Q
}

// correctedResponse adds delta c1 of c's test ciphertext to every share of resp, re-signed by
// its signer, as the rogue dealer would.
func correctedResponse(t *testing.T, p Params, c *Challenge, crs [32]byte, resp *Response, delta ring.Poly, signer *Identity) *Response {
	t.Helper()
	ringQ := p.rlwe().RingQ()
	sum, err := c.testSum(crs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, flat := sum.polys(0)
	fix := ringQ.NewPoly()
	unflatten(fix, flat)
	ringQ.NTT(fix, fix)
	ringQ.MulCoeffsMontgomery(fix, delta, fix)
	ringQ.INTT(fix, fix)
	out := *resp
	out.Shares = nil
	for _, blob := range resp.Shares {
		h, body, err := parseBlob(p, blob)
		if err != nil {
			t.Fatal(err)
		}
		share := make([]uint64, p.polyLen())
		readCoeffs(share, body)
		poly := ringQ.NewPoly()
		unflatten(poly, share)
		ringQ.Add(poly, fix, poly)
		fixed, err := appendBlob(nil, p, h, poly.Coeffs)
		if err != nil {
			t.Fatal(err)
		}
		out.Shares = append(out.Shares, fixed)
	}
	if out.Signature, err = signAs(signer, out.signedPart(), responseContext); err != nil {
		t.Fatal(err)
	}
	return &out
}
