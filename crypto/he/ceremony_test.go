package he

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

type ceremonyRun struct {
	params      Params
	idents      []*Identity
	roster      *Roster
	dealings    []*Dealing
	commitments []*Commitment
}

func newCeremonyRun(t testing.TB, n, threshold int) *ceremonyRun {
	t.Helper()
	c := &ceremonyRun{params: DefaultParams()}
	var pubs []PublicIdentity
	for _, id := range []string{"alice", "bob", "carol", "dave"}[:n] {
		ident, err := NewIdentity(id)
		if err != nil {
			t.Fatal(err)
		}
		c.idents = append(c.idents, ident)
		pubs = append(pubs, ident.Public())
	}
	var err error
	if c.roster, err = NewRoster(c.params, 3, threshold, pubs); err != nil {
		t.Fatal(err)
	}
	for _, ident := range c.idents {
		d, cm, err := Deal(c.roster, ident)
		if err != nil {
			t.Fatal(err)
		}
		c.dealings = append(c.dealings, d)
		c.commitments = append(c.commitments, cm)
	}
	for _, d := range c.dealings {
		if err := Reveal(c.roster, d, c.commitments); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// finish runs Finish for every trustee and returns the shares and the (common) key.
func (c *ceremonyRun) finish(t testing.TB) ([]*SecretShare, *KeyEpoch) {
	t.Helper()
	var shares []*SecretShare
	var key *KeyEpoch
	for _, ident := range c.idents {
		s, k, err := Finish(c.roster, ident, c.commitments, c.dealings)
		if err != nil {
			t.Fatalf("%s: %v", ident.ID, err)
		}
		shares, key = append(shares, s), k
	}
	return shares, key
}

// TestDistributedCeremony runs the ceremony through its serialised messages, as trustees on
// different hosts would, and checks that all trustees reach the same key and consistent
// shares.
func TestDistributedCeremony(t *testing.T) {
	c := newCeremonyRun(t, 3, 2)
	p := c.params
	roster := roundTrip(t, "roster", c.roster, (*Roster).MarshalBinary, func(b []byte) (*Roster, error) { return ParseRoster(p, b) })
	var wire []*Dealing
	for _, d := range c.dealings {
		wire = append(wire, roundTrip(t, "dealing", d, (*Dealing).MarshalBinary, func(b []byte) (*Dealing, error) { return ParseDealing(p, b) }))
	}
	var commits []*Commitment
	for _, cm := range c.commitments {
		commits = append(commits, roundTrip(t, "commitment", cm, (*Commitment).MarshalBinary, func(b []byte) (*Commitment, error) { return ParseCommitment(p, b) }))
	}
	var shares []*SecretShare
	var keys [][]byte
	for i, ident := range c.idents {
		ident = roundTrip(t, "identity", ident, (*Identity).MarshalBinary, ParseIdentity)
		// Each trustee sees the dealings in another order.
		order := append(append([]*Dealing{}, wire[i:]...), wire[:i]...)
		share, key, err := Finish(roster, ident, commits, order)
		if err != nil {
			t.Fatalf("%s: %v", ident.ID, err)
		}
		shares = append(shares, roundTrip(t, "secret share", share, (*SecretShare).MarshalBinary, func(b []byte) (*SecretShare, error) { return ParseSecretShare(p, b) }))
		key = roundTrip(t, "key epoch", key, (*KeyEpoch).MarshalBinary, func(b []byte) (*KeyEpoch, error) { return ParseKeyEpoch(p, b) })
		kb, _ := key.MarshalBinary()
		keys = append(keys, kb)
		if share.TrusteeID() != ident.ID {
			t.Errorf("share of %s says it belongs to %q", ident.ID, share.TrusteeID())
		}
	}
	for i := range keys {
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("trustee %d computed another key epoch", i)
		}
	}
	key, _ := ParseKeyEpoch(p, keys[0])
	if err := CheckShares(key, shares); err != nil {
		t.Fatal(err)
	}
	for _, pi := range c.roster.Members {
		roundTrip(t, "public identity", pi.PublicIdentity, PublicIdentity.MarshalBinary, ParsePublicIdentity)
	}
}

func TestCeremonyRejects(t *testing.T) {
	c := newCeremonyRun(t, 3, 2)
	other := newCeremonyRun(t, 3, 2) // same ids, other keys and roster
	mallory, _ := NewIdentity("bob")

	forged := *c.dealings[1]
	forged.PKShare = append([]uint64(nil), forged.PKShare...)
	forged.PKShare[0] ^= 1
	swapped := *c.dealings[1]
	swapped.Sealed = [][]byte{c.dealings[1].Sealed[1], c.dealings[1].Sealed[0], c.dealings[1].Sealed[2]}
	swapped.Signature = other.dealings[1].Signature
	foreign := *other.dealings[1]
	// bob re-deals after committing: a valid, signed dealing, but not the committed one.
	redealt, _, err := Deal(c.roster, c.idents[1])
	if err != nil {
		t.Fatal(err)
	}
	// A stranger signs a commitment in bob's name.
	strangerCommit, err := commit(mallory, c.dealings[1])
	if err != nil {
		t.Fatal(err)
	}
	with := func(list []*Commitment, i int, cm *Commitment) []*Commitment {
		out := append([]*Commitment(nil), list...)
		out[i] = cm
		return out
	}

	cases := []struct {
		name        string
		self        *Identity
		commitments []*Commitment
		dealings    []*Dealing
		blame       string // the trustee a *TrusteeError must name, if any
	}{
		{"missing dealing", c.idents[0], c.commitments, c.dealings[:2], "carol"},
		{"duplicate dealing", c.idents[0], c.commitments, []*Dealing{c.dealings[0], c.dealings[1], c.dealings[1]}, "bob"},
		{"altered public-key share", c.idents[0], c.commitments, []*Dealing{c.dealings[0], &forged, c.dealings[2]}, "bob"},
		{"re-signed by a stranger", c.idents[0], c.commitments, []*Dealing{c.dealings[0], &swapped, c.dealings[2]}, "bob"},
		{"dealing for another roster", c.idents[0], c.commitments, []*Dealing{c.dealings[0], &foreign, c.dealings[2]}, "bob"},
		{"dealing other than the committed one", c.idents[0], c.commitments, []*Dealing{c.dealings[0], redealt, c.dealings[2]}, "bob"},
		{"missing commitment", c.idents[0], c.commitments[:2], c.dealings, "carol"},
		{"duplicate commitment", c.idents[0], []*Commitment{c.commitments[0], c.commitments[1], c.commitments[1]}, c.dealings, "bob"},
		{"commitment signed by a stranger", c.idents[0], with(c.commitments, 1, strangerCommit), c.dealings, "bob"},
		{"commitment for another roster", c.idents[0], with(c.commitments, 1, other.commitments[1]), c.dealings, "bob"},
		{"impostor with the same id", mallory, c.commitments, c.dealings, ""},
	}
	for _, tc := range cases {
		_, _, err := Finish(c.roster, tc.self, tc.commitments, tc.dealings)
		if !isErr(err, ErrCeremony) {
			t.Errorf("%s: got %v, want ErrCeremony", tc.name, err)
			continue
		}
		var te *TrusteeError
		if tc.blame != "" && (!errors.As(err, &te) || te.Trustee != tc.blame || !strings.Contains(err.Error(), tc.blame)) {
			t.Errorf("%s: %v does not blame %q", tc.name, err, tc.blame)
		}
	}
	for _, bad := range []*Identity{nil, {}, {ID: "alice"}} {
		if _, _, err := Deal(c.roster, bad); !isErr(err, ErrCeremony) {
			t.Errorf("Deal with an unusable identity: %v, want ErrCeremony", err)
		}
		if _, _, err := Finish(c.roster, bad, c.commitments, c.dealings); !isErr(err, ErrCeremony) {
			t.Errorf("Finish with an unusable identity: %v, want ErrCeremony", err)
		}
	}
	if _, _, err := Deal(c.roster, mallory); !isErr(err, ErrCeremony) {
		t.Errorf("impostor dealing: %v, want ErrCeremony", err)
	}
}

// TestRevealRejects checks that a trustee's dealing is not released before every trustee is
// bound by a valid commitment: the whole defence against the rogue-key attack.
func TestRevealRejects(t *testing.T) {
	c := newCeremonyRun(t, 3, 2)
	other := newCeremonyRun(t, 3, 2)
	cases := []struct {
		name        string
		commitments []*Commitment
	}{
		{"one trustee has not committed", c.commitments[:2]},
		{"no commitments", nil},
		{"a commitment for another roster", []*Commitment{c.commitments[0], c.commitments[1], other.commitments[2]}},
		{"own commitment missing, another's twice", []*Commitment{c.commitments[1], c.commitments[1], c.commitments[2]}},
	}
	for _, tc := range cases {
		if err := Reveal(c.roster, c.dealings[0], tc.commitments); !isErr(err, ErrCeremony) {
			t.Errorf("%s: Reveal gave %v, want ErrCeremony", tc.name, err)
		}
	}
	// The set of commitments has one digest whatever the order it arrived in.
	d1, _ := CommitmentsDigest(c.commitments)
	d2, _ := CommitmentsDigest([]*Commitment{c.commitments[2], c.commitments[0], c.commitments[1]})
	d3, _ := CommitmentsDigest(other.commitments)
	if d1 != d2 || d1 == d3 {
		t.Errorf("CommitmentsDigest: same set %x and %x, other set %x", d1[:4], d2[:4], d3[:4])
	}
}

func TestRosterRejects(t *testing.T) {
	p := DefaultParams()
	var pubs []PublicIdentity
	for _, id := range []string{"a", "b", "c"} {
		ident, _ := NewIdentity(id)
		pubs = append(pubs, ident.Public())
	}
	cases := []struct {
		name      string
		threshold int
		members   []PublicIdentity
	}{
		{"threshold 1", 1, pubs},
		{"threshold above n", 4, pubs},
		{"one trustee", 1, pubs[:1]},
		{"duplicate id", 2, []PublicIdentity{pubs[0], pubs[0], pubs[1]}},
	}
	for _, c := range cases {
		if _, err := NewRoster(p, 1, c.threshold, c.members); !isErr(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", c.name, err)
		}
	}
	if _, err := NewIdentity("no spaces"); err == nil {
		t.Errorf("identity with a space in its id accepted")
	}
}
