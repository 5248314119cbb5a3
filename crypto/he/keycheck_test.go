package he

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/crypto/sig"
)

// keyCheckRun is a finished ceremony, ready for the test decryption.
type keyCheckRun struct {
	*ceremonyRun
	shares []*SecretShare
	key    *KeyEpoch
}

func newKeyCheckRun(t testing.TB, n, threshold int) *keyCheckRun {
	t.Helper()
	c := newCeremonyRun(t, n, threshold)
	shares, key := c.finish(t)
	return &keyCheckRun{ceremonyRun: c, shares: shares, key: key}
}

// respond has every trustee named in kc's challenge, other than the challenger, answer it.
func (r *keyCheckRun) respond(t testing.TB, kc *KeyCheck) []*Response {
	t.Helper()
	var out []*Response
	responders := kc.Responders()
	for i, ident := range r.idents {
		x := r.roster.Members[i].Point
		if !slices.ContainsFunc(responders, func(m Member) bool { return m.Point == x }) {
			continue
		}
		resp, err := Respond(r.roster, r.key, r.shares[i], ident, kc.Challenge())
		if err != nil {
			t.Fatalf("%s answering: %v", ident.ID, err)
		}
		out = append(out, resp)
	}
	return out
}

// TestKeyCheck runs every trustee's test decryption through the serialised messages, as
// trustees on different hosts would, and checks the approvals.
func TestKeyCheck(t *testing.T) {
	for _, tc := range []struct{ n, threshold int }{{3, 2}, {3, 3}, {4, 3}} {
		r := newKeyCheckRun(t, tc.n, tc.threshold)
		p := r.params
		for i, ident := range r.idents {
			kc, err := NewKeyCheck(r.roster, r.key, ident)
			if err != nil {
				t.Fatal(err)
			}
			kc = roundTrip(t, "key check", kc, (*KeyCheck).MarshalBinary, func(b []byte) (*KeyCheck, error) { return ParseKeyCheck(r.roster, r.key, b) })
			c := roundTrip(t, "challenge", kc.Challenge(), (*Challenge).MarshalBinary, func(b []byte) (*Challenge, error) { return ParseChallenge(p, b) })
			if c.From != r.roster.Members[i].Point || len(kc.Responders()) != tc.n-1 {
				t.Fatalf("%s's challenge is from point %d, to be answered by %v", ident.ID, c.From, kc.Responders())
			}
			var responses []*Response
			for _, resp := range r.respond(t, kc) {
				responses = append(responses, roundTrip(t, "response", resp, (*Response).MarshalBinary, func(b []byte) (*Response, error) { return ParseResponse(p, b) }))
			}
			if len(responses) != tc.n-1 {
				t.Fatalf("%d responses to %s's challenge, want %d", len(responses), ident.ID, tc.n-1)
			}
			a, err := kc.Approve(r.shares[i], ident, responses)
			if err != nil {
				t.Fatalf("%d-of-%d, %s: %v", tc.threshold, tc.n, ident.ID, err)
			}
			a = roundTrip(t, "approval", a, (*Approval).MarshalBinary, ParseApproval)
			if err := a.Verify(r.roster, r.key); err != nil {
				t.Fatal(err)
			}
			// The approval is a plain ML-DSA-65 signature by the trustee's identity key: what a
			// root of trust listing PublicIdentity.Sign as a role key verifies.
			pub, err := sig.ParsePublicKey(ident.Public().Sign)
			if err != nil {
				t.Fatal(err)
			}
			digest, _ := r.key.Digest()
			if err := pub.Verify(digest[:], a.Signature, ApprovalContext); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRunLocalCeremonyApprovals(t *testing.T) {
	res, err := RunLocalCeremony(DefaultParams(), 2, []string{"privacy", "security", "audit"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Approvals) != 3 || len(res.Identities) != 3 || len(res.Shares) != 3 {
		t.Fatalf("%d approvals, %d identities, %d shares", len(res.Approvals), len(res.Identities), len(res.Shares))
	}
	for i, a := range res.Approvals {
		if a.Trustee != res.Identities[i].ID {
			t.Errorf("approval %d is by %q", i, a.Trustee)
		}
		if err := a.Verify(res.Roster, res.Key); err != nil {
			t.Error(err)
		}
	}
}

func TestKeyCheckRejects(t *testing.T) {
	r := newKeyCheckRun(t, 3, 2)
	alice, bob, carol := r.idents[0], r.idents[1], r.idents[2]
	kc, err := NewKeyCheck(r.roster, r.key, alice) // active sets {alice, bob}, {alice, carol}
	if err != nil {
		t.Fatal(err)
	}
	c := kc.Challenge()
	good := r.respond(t, kc)

	// Respond refuses.
	resigned := func(mut func(*Challenge)) *Challenge {
		cc := *c
		mut(&cc)
		if cc.Signature, err = signAs(alice, cc.signedPart(), challengeContext); err != nil {
			t.Fatal(err)
		}
		return &cc
	}
	unsigned := *c
	unsigned.Epoch++
	respondCases := []struct {
		name  string
		share *SecretShare
		self  *Identity
		c     *Challenge
	}{
		{"own challenge", r.shares[0], alice, c},
		{"another key's challenge", r.shares[1], bob, resigned(func(cc *Challenge) { cc.KeyDigest[0] ^= 1 })},
		{"altered after signing", r.shares[1], bob, &unsigned},
		{"someone else's share", r.shares[2], bob, c},
	}
	for _, tc := range respondCases {
		if _, err := Respond(r.roster, r.key, tc.share, tc.self, tc.c); err == nil {
			t.Errorf("Respond, %s: accepted", tc.name)
		}
	}

	// Approve refuses, and never returns an approval with an error.
	other, err := NewKeyCheck(r.roster, r.key, alice) // a second challenge of alice
	if err != nil {
		t.Fatal(err)
	}
	stale := r.respond(t, other)
	fromCarol := *good[0]
	fromCarol.From = r.roster.Members[2].Point
	if fromCarol.Signature, err = signAs(carol, fromCarol.signedPart(), responseContext); err != nil {
		t.Fatal(err)
	}
	forged := *good[0]
	forged.Shares = [][]byte{slices.Clone(good[0].Shares[0])}
	forged.Shares[0][len(forged.Shares[0])-1] ^= 1
	approveCases := []struct {
		name      string
		share     *SecretShare
		self      *Identity
		responses []*Response
		want      string
	}{
		{"no responses", r.shares[0], alice, nil, `no response from "bob"`},
		{"response to another challenge", r.shares[0], alice, stale, "another challenge"},
		{"two responses from bob", r.shares[0], alice, []*Response{good[0], good[0]}, `two responses from "bob"`},
		{"bob's shares signed by carol", r.shares[0], alice, []*Response{good[0], &fromCarol}, "another sum or active set"},
		{"response altered by the relay", r.shares[0], alice, []*Response{&forged}, "not signed"},
		{"bob's share instead of alice's", r.shares[1], alice, good, "not all"},
		{"bob's identity", r.shares[0], bob, good, "not all"},
	}
	for _, tc := range approveCases {
		a, err := kc.Approve(tc.share, tc.self, tc.responses)
		if err == nil || a != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Approve, %s: approval %v, error %v; want one mentioning %q", tc.name, a, err, tc.want)
		}
	}
	if _, err := kc.Approve(r.shares[0], alice, good); err != nil {
		t.Fatalf("the good responses: %v", err)
	}
}

// TestKeyCheckSets: a challenge tests every set of t trustees with its challenger, the
// challenger and the t-1 after it first; a roster with more such sets than MaxKeyCheckSets is
// refused, since the sets left untested could be the ones without a colluder (a code review
// showed a 5-of-9 roster passing a rogue key when only the first 35 were tested).
func TestKeyCheckSets(t *testing.T) {
	for _, tc := range []struct {
		n, threshold int
		from         uint64
		want         int
		first        []uint64
	}{
		{3, 2, 1, 2, []uint64{1, 2}},
		{3, 2, 3, 2, []uint64{1, 3}},
		{3, 3, 2, 1, []uint64{1, 2, 3}},
		{5, 3, 4, 6, []uint64{1, 4, 5}},
		{8, 4, 1, 35, []uint64{1, 2, 3, 4}},
		{9, 5, 9, 70, []uint64{1, 2, 3, 4, 9}},
		{16, 15, 3, 15, []uint64{1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
	} {
		roster := &Roster{Threshold: tc.threshold}
		for i := range tc.n {
			roster.Members = append(roster.Members, Member{Point: uint64(i + 1)})
		}
		sets := KeyCheckSets(roster, tc.from)
		if len(sets) != tc.want || !slices.Equal(sets[0], tc.first) {
			t.Errorf("%d-of-%d from %d: %d sets, the first %v; want %d, the first %v", tc.threshold, tc.n, tc.from, len(sets), sets[0], tc.want, tc.first)
		}
		if got := keyCheckSetCount(tc.n, tc.threshold); got != tc.want {
			t.Errorf("keyCheckSetCount(%d, %d) = %d, want %d", tc.n, tc.threshold, got, tc.want)
		}
		seen := map[string]bool{}
		for _, s := range sets {
			key := fmt.Sprint(s)
			if len(s) != tc.threshold || !slices.IsSorted(s) || !slices.Contains(s, tc.from) || seen[key] {
				t.Errorf("%d-of-%d from %d: set %v", tc.threshold, tc.n, tc.from, s)
			}
			seen[key] = true
		}
	}
}

func TestRosterTooManySetsToTest(t *testing.T) {
	var pubs []PublicIdentity
	for i := range 10 {
		ident, err := NewIdentity(fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, ident.Public())
	}
	for _, tc := range []struct {
		threshold int
		ok        bool
	}{{3, true}, {4, false}, {7, false}, {8, true}} {
		_, err := NewRoster(DefaultParams(), 1, tc.threshold, pubs)
		if (err == nil) != tc.ok || err != nil && !isErr(err, ErrThreshold) {
			t.Errorf("%d-of-10 (C(9, %d) = %d sets): %v, want accepted %v", tc.threshold, tc.threshold-1, keyCheckSetCount(10, tc.threshold), err, tc.ok)
		}
	}
}

func TestIdentitySigning(t *testing.T) {
	ident, err := NewIdentity("alice")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ident.SigningKey()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(key.Public().Bytes(), ident.Public().Sign) || !slices.Equal(key.Seed(), ident.SigningSeed()) {
		t.Fatal("SigningKey is not the identity's ML-DSA key")
	}
	s, err := ident.Sign([]byte("document"), "vigil/release/v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := key.Public().Verify([]byte("document"), s, "vigil/release/v1"); err != nil {
		t.Fatal(err)
	}
	for _, ctx := range []string{ApprovalContext, dealingContext, commitmentContext, challengeContext, responseContext, strings.Repeat("x", 256)} {
		if _, err := ident.Sign([]byte("x"), ctx); err == nil {
			t.Errorf("Sign accepted the context %.40q", ctx)
		}
	}
}

// BenchmarkLocalCeremony measures the whole ceremony for three trustees, 2-of-3, on one host:
// identities, roster, commit, reveal, finish, every trustee's test decryption and CheckShares.
func BenchmarkLocalCeremony(b *testing.B) {
	p := DefaultParams()
	for b.Loop() {
		if _, err := RunLocalCeremony(p, 1, []string{"a", "b", "c"}, 2); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKeyCheck measures one trustee's test decryption, 2-of-3: its challenge, the two
// other trustees' responses (one share each: sets {a, b} and {a, c}) and its approval.
func BenchmarkKeyCheck(b *testing.B) {
	res, err := RunLocalCeremony(DefaultParams(), 1, []string{"a", "b", "c"}, 2)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		kc, err := NewKeyCheck(res.Roster, res.Key, res.Identities[0])
		if err != nil {
			b.Fatal(err)
		}
		var responses []*Response
		for i := 1; i < 3; i++ {
			resp, err := Respond(res.Roster, res.Key, res.Shares[i], res.Identities[i], kc.Challenge())
			if err != nil {
				b.Fatal(err)
			}
			responses = append(responses, resp)
		}
		if _, err := kc.Approve(res.Shares[0], res.Identities[0], responses); err != nil {
			b.Fatal(err)
		}
	}
}
