package he

import (
	"bytes"
	"testing"
)

type ceremonyRun struct {
	params   Params
	idents   []*Identity
	roster   *Roster
	dealings []*Dealing
}

func newCeremonyRun(t *testing.T, n, threshold int) *ceremonyRun {
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
		d, err := Deal(c.roster, ident)
		if err != nil {
			t.Fatal(err)
		}
		c.dealings = append(c.dealings, d)
	}
	return c
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
	var shares []*SecretShare
	var keys [][]byte
	for i, ident := range c.idents {
		ident = roundTrip(t, "identity", ident, (*Identity).MarshalBinary, ParseIdentity)
		// Each trustee sees the dealings in another order.
		order := append(append([]*Dealing{}, wire[i:]...), wire[:i]...)
		share, key, err := Finish(roster, ident, order)
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

	cases := []struct {
		name     string
		self     *Identity
		dealings []*Dealing
	}{
		{"missing dealing", c.idents[0], c.dealings[:2]},
		{"duplicate dealing", c.idents[0], []*Dealing{c.dealings[0], c.dealings[1], c.dealings[1]}},
		{"altered public-key share", c.idents[0], []*Dealing{c.dealings[0], &forged, c.dealings[2]}},
		{"re-signed by a stranger", c.idents[0], []*Dealing{c.dealings[0], &swapped, c.dealings[2]}},
		{"dealing for another roster", c.idents[0], []*Dealing{c.dealings[0], &foreign, c.dealings[2]}},
		{"impostor with the same id", mallory, c.dealings},
	}
	for _, tc := range cases {
		if _, _, err := Finish(c.roster, tc.self, tc.dealings); !isErr(err, ErrCeremony) {
			t.Errorf("%s: got %v, want ErrCeremony", tc.name, err)
		}
	}
	for _, bad := range []*Identity{nil, {}, {ID: "alice"}} {
		if _, err := Deal(c.roster, bad); !isErr(err, ErrCeremony) {
			t.Errorf("Deal with an unusable identity: %v, want ErrCeremony", err)
		}
		if _, _, err := Finish(c.roster, bad, c.dealings); !isErr(err, ErrCeremony) {
			t.Errorf("Finish with an unusable identity: %v, want ErrCeremony", err)
		}
	}
	if _, err := Deal(c.roster, mallory); !isErr(err, ErrCeremony) {
		t.Errorf("impostor dealing: %v, want ErrCeremony", err)
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
