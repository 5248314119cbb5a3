package he

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// The attacks of the security review on the key ceremony, written as the attacker would run
// them: alice and bob are honest, mallory is a trustee who deals last.

// attackCeremony is a 2-of-3 ceremony between alice, bob and mallory, up to the point where
// everyone has dealt and committed.
type attackCeremony struct {
	p           Params
	roster      *Roster
	alice, bob  *Identity
	mallory     *Identity
	dealings    []*Dealing    // alice's, bob's, mallory's
	commitments []*Commitment // likewise
}

func newAttackCeremony(t *testing.T) *attackCeremony {
	t.Helper()
	a := &attackCeremony{p: DefaultParams()}
	var pubs []PublicIdentity
	for _, id := range []string{"alice", "bob", "mallory"} {
		ident, err := NewIdentity(id)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, ident.Public())
		switch id {
		case "alice":
			a.alice = ident
		case "bob":
			a.bob = ident
		default:
			a.mallory = ident
		}
	}
	var err error
	if a.roster, err = NewRoster(a.p, 9, 2, pubs); err != nil {
		t.Fatal(err)
	}
	for _, ident := range a.idents() {
		d, c, err := Deal(a.roster, ident)
		if err != nil {
			t.Fatal(err)
		}
		a.dealings = append(a.dealings, d)
		a.commitments = append(a.commitments, c)
	}
	return a
}

func (a *attackCeremony) idents() []*Identity { return []*Identity{a.alice, a.bob, a.mallory} }

// finishAll runs Finish for all three with the given messages and returns shares and key.
func (a *attackCeremony) finishAll(t *testing.T, commitments []*Commitment, dealings []*Dealing) ([]*SecretShare, *KeyEpoch) {
	t.Helper()
	var shares []*SecretShare
	var key *KeyEpoch
	for _, ident := range a.idents() {
		s, k, err := Finish(a.roster, ident, commitments, dealings)
		if err != nil {
			t.Fatalf("%s: %v", ident.ID, err)
		}
		shares, key = append(shares, s), k
	}
	return shares, key
}

// approvals runs every trustee's test decryption with honest responders and returns, by
// trustee, the approval or the error.
func (a *attackCeremony) approvals(t *testing.T, shares []*SecretShare, key *KeyEpoch) ([]*Approval, []error) {
	t.Helper()
	r := &keyCheckRun{ceremonyRun: &ceremonyRun{params: a.p, idents: a.idents(), roster: a.roster}, shares: shares, key: key}
	approvals := make([]*Approval, 3)
	errs := make([]error, 3)
	for i, ident := range a.idents() {
		kc, err := NewKeyCheck(a.roster, key, ident)
		if err != nil {
			t.Fatal(err)
		}
		approvals[i], errs[i] = kc.Approve(shares[i], ident, r.respond(t, kc))
	}
	return approvals, errs
}

// rogueShare is what mallory computes once she has seen the others' dealings: a public-key
// share that cancels theirs, so that the collective key is -a s* + e for a secret s* she
// alone knows. It returns that share and the key it produces.
func rogueShare(p Params, roster *Roster, others []*Dealing) (share, key []uint64) {
	rp := p.rlwe()
	ringQ := rp.RingQ()
	sStar := rlwe.NewKeyGenerator(rp).GenSecretKeyNew()
	ckg := mhe.NewPublicKeyGenProtocol(rp)
	mine := ckg.AllocateShare()
	ckg.GenShare(sStar, sampleCRP(p, roster.CRS), &mine)
	ringQ.Reduce(mine.Value.Q, mine.Value.Q)
	key = polyResidues(mine.Value.Q)
	theirs := ringQ.NewPoly()
	for _, d := range others {
		setPolyResidues(theirs, d.PKShare)
		ringQ.Sub(mine.Value.Q, theirs, mine.Value.Q)
	}
	return polyResidues(mine.Value.Q), key
}

// polyResidues returns poly's residues as dealings and keys store them: modulus by modulus.
func polyResidues(poly ring.Poly) []uint64 {
	var out []uint64
	for _, c := range poly.Coeffs {
		out = append(out, c...)
	}
	return out
}

// setPolyResidues is the inverse of polyResidues.
func setPolyResidues(poly ring.Poly, flat []uint64) {
	for l, c := range poly.Coeffs {
		copy(c, flat[l*len(c):])
	}
}

// resign has mallory sign a dealing she altered: she may, it is her own dealing.
func resign(t *testing.T, mallory *Identity, d *Dealing) {
	t.Helper()
	var err error
	if d.Signature, err = signAs(mallory, d.signedPart(), dealingContext); err != nil {
		t.Fatal(err)
	}
}

func TestAttackRogueKeyCeremony(t *testing.T) {
	a := newAttackCeremony(t)
	alice, bob, mallory := 0, 1, 2

	// Reveal: honest trustees publish their dealings only once all three commitments are in,
	// mallory's among them, so mallory committed before she saw any public-key share.
	for _, i := range []int{alice, bob} {
		if err := Reveal(a.roster, a.dealings[i], a.commitments); err != nil {
			t.Fatal(err)
		}
	}

	// The attack of the review: mallory now reads alice's and bob's public-key shares and
	// rewrites her own to cancel them.
	rogue := *a.dealings[mallory]
	var rogueKey []uint64
	rogue.PKShare, rogueKey = rogueShare(a.p, a.roster, a.dealings[:mallory])
	resign(t, a.mallory, &rogue)
	attackDealings := []*Dealing{a.dealings[alice], a.dealings[bob], &rogue}

	t.Run("without commitments the attack works", func(t *testing.T) {
		// What the review found: had the honest trustees accepted a commitment mallory made
		// now (that is, no commit-then-reveal), the collective key is exactly mallory's.
		late, err := commit(a.mallory, &rogue)
		if err != nil {
			t.Fatal(err)
		}
		_, key := a.finishAll(t, []*Commitment{a.commitments[alice], a.commitments[bob], late}, attackDealings)
		if !slices.Equal(key.b, rogueKey) {
			t.Fatal("the rogue share did not make the collective key mallory's own")
		}
	})

	t.Run("Finish refuses the rewritten dealing", func(t *testing.T) {
		for _, ident := range []*Identity{a.alice, a.bob} {
			_, _, err := Finish(a.roster, ident, a.commitments, attackDealings)
			var te *TrusteeError
			if !isErr(err, ErrCeremony) || !errors.As(err, &te) || te.Trustee != "mallory" ||
				!strings.Contains(err.Error(), `the dealing from "mallory" does not match its commitment`) {
				t.Fatalf("%s's Finish: %v; want the dealing from mallory refused", ident.ID, err)
			}
		}
	})

	t.Run("a second commitment is refused", func(t *testing.T) {
		late, err := commit(a.mallory, &rogue)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = Finish(a.roster, a.alice, append(slices.Clone(a.commitments), late), attackDealings)
		if !isErr(err, ErrCeremony) || !strings.Contains(err.Error(), `two commitments from "mallory"`) {
			t.Fatalf("Finish with both of mallory's commitments: %v", err)
		}
		// Handing a trustee only the late commitment changes the set it revealed against,
		// which the trustee recorded (the CLI compares the digests).
		revealed, _ := CommitmentsDigest(a.commitments)
		swapped, _ := CommitmentsDigest([]*Commitment{a.commitments[alice], a.commitments[bob], late})
		if revealed == swapped {
			t.Fatal("the late commitment does not change the commitment digest")
		}
	})

	t.Run("the test decryption catches a rogue key that got through", func(t *testing.T) {
		// Suppose the honest trustees were tricked into the late commitment after all: the
		// key is mallory's, but the shares they hold are of alice's + bob's + mallory's dealt
		// secrets, so no honest challenge decrypts, and no honest trustee approves.
		late, err := commit(a.mallory, &rogue)
		if err != nil {
			t.Fatal(err)
		}
		shares, key := a.finishAll(t, []*Commitment{a.commitments[alice], a.commitments[bob], late}, attackDealings)
		approvals, errs := a.approvals(t, shares, key)
		for _, i := range []int{alice, bob} {
			if approvals[i] != nil || !isErr(errs[i], ErrKeyCheck) {
				t.Errorf("%s approved mallory's key (%v)", a.idents()[i].ID, errs[i])
			}
		}
		if err := CheckShares(key, shares); !isErr(err, ErrKeyCheck) {
			t.Errorf("CheckShares: %v, want ErrKeyCheck", err)
		}
	})

	t.Run("a rogue share committed blind is caught by the test decryption", func(t *testing.T) {
		// Mallory plays by the rules of commit-then-reveal but commits to a public-key share
		// that is not of the secret she dealt: the best "cancelling" share she can make without
		// the others' (here: the share of a second fresh secret; any guess at theirs is as good,
		// since -a s_i + e_i is pseudorandom to her). Finish cannot see it; the test decryption
		// does.
		b := newAttackCeremony(t)
		second, _, err := Deal(b.roster, b.mallory)
		if err != nil {
			t.Fatal(err)
		}
		blind := *b.dealings[mallory]
		blind.PKShare = second.PKShare
		resign(t, b.mallory, &blind)
		b.dealings[mallory] = &blind
		if b.commitments[mallory], err = commit(b.mallory, &blind); err != nil {
			t.Fatal(err)
		}
		for _, d := range b.dealings {
			if err := Reveal(b.roster, d, b.commitments); err != nil {
				t.Fatal(err)
			}
		}
		shares, key := b.finishAll(t, b.commitments, b.dealings)
		approvals, errs := b.approvals(t, shares, key)
		for i, ident := range b.idents() {
			if approvals[i] != nil || !isErr(errs[i], ErrKeyCheck) {
				t.Errorf("%s approved a key whose secret the shares do not hold (%v)", ident.ID, errs[i])
			}
		}
	})
}

// TestAttackCeremonySkipsTestDecryption: an epoch whose shares do not decrypt is never
// approved, however the approval is sought.
func TestAttackCeremonySkipsTestDecryption(t *testing.T) {
	// A broken epoch: mallory's public-key share is not of the secret she dealt.
	a := newAttackCeremony(t)
	second, _, err := Deal(a.roster, a.mallory)
	if err != nil {
		t.Fatal(err)
	}
	broken := *a.dealings[2]
	broken.PKShare = second.PKShare
	resign(t, a.mallory, &broken)
	a.dealings[2] = &broken
	if a.commitments[2], err = commit(a.mallory, &broken); err != nil {
		t.Fatal(err)
	}
	shares, key := a.finishAll(t, a.commitments, a.dealings)
	r := &keyCheckRun{ceremonyRun: &ceremonyRun{params: a.p, idents: a.idents(), roster: a.roster}, shares: shares, key: key}
	kc, err := NewKeyCheck(a.roster, key, a.alice)
	if err != nil {
		t.Fatal(err)
	}
	responses := r.respond(t, kc)

	// The relay forges bob's response with alice's own decryption share, hoping she adds
	// her share to itself and sees a result she accepts.
	relayForged := *responses[0]
	dec, _ := NewDecryptor(shares[0])
	sum, _ := kc.Challenge().testSum(a.roster.CRS, nil, nil)
	relayForged.Shares, _ = dec.Share(sum, setsWith(KeyCheckSets(a.roster, kc.Challenge().From), relayForged.From)[0])

	attempts := []struct {
		name      string
		responses []*Response
	}{
		{"approve without any response", nil},
		{"approve with the honest responses", responses},
		{"approve with a response the relay made", append([]*Response{&relayForged}, responses[1:]...)},
	}
	for _, at := range attempts {
		if ap, err := kc.Approve(shares[0], a.alice, at.responses); ap != nil || err == nil {
			t.Errorf("%s: alice approved the broken epoch", at.name)
		}
	}

	// Nor can an approval be made without Approve, or passed off for another key.
	digest, _ := key.Digest()
	if _, err := a.alice.Sign(digest[:], ApprovalContext); err == nil {
		t.Error("Identity.Sign made an approval without a test decryption")
	}
	byMallory, _ := signAs(a.mallory, digest[:], ApprovalContext)
	good := newKeyCheckRun(t, 3, 2)
	goodKC, _ := NewKeyCheck(good.roster, good.key, good.idents[0])
	otherKeyApproval, err := goodKC.Approve(good.shares[0], good.idents[0], good.respond(t, goodKC))
	if err != nil {
		t.Fatal(err)
	}
	otherKeyApproval.Trustee = "alice"
	forgeries := []struct {
		name string
		a    *Approval
	}{
		{"mallory signs in alice's name", &Approval{KeyDigest: digest, Trustee: "alice", Signature: byMallory}},
		{"alice's approval of another key epoch", otherKeyApproval},
		{"an approval by someone off the roster", &Approval{KeyDigest: digest, Trustee: "eve", Signature: byMallory}},
	}
	for _, f := range forgeries {
		if err := f.a.Verify(a.roster, key); err == nil {
			t.Errorf("%s: Verify accepted it", f.name)
		}
	}

	// And the one-host ceremony refuses the broken epoch outright.
	if err := CheckShares(key, shares); !isErr(err, ErrKeyCheck) {
		t.Errorf("CheckShares: %v, want ErrKeyCheck", err)
	}
}
