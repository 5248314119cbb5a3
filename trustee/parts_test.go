package trustee

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
	"weak"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// commitPart streams hdr and contribs to one trustee's CommitPart, as a frontend does.
func commitPart(tc vigilv1.TrusteeClient, hdr *vigilv1.SumHeader, contribs []*vigilv1.Contribution) (*vigilv1.PartReceipt, error) {
	stream, err := tc.CommitPart(context.Background())
	if err != nil {
		return nil, err
	}
	if err := sendContributions(stream, hdr, SliceContributions(contribs)); err != nil && !errors.Is(err, errEnded) {
		return nil, err
	}
	return stream.CloseAndRecv()
}

// parted is a round's contributions with parts, as a round leader holds them after asking
// its frontends: ids[trustee] are the parts that trustee took, and rest what no part holds.
type parted struct {
	all  SliceContributions
	ids  map[string][][]byte
	rest SliceContributions
}

func (p parted) Len() int                                     { return p.all.Len() }
func (p parted) All() iter.Seq2[*vigilv1.Contribution, error] { return p.all.All() }
func (p parted) For(trustee string) ([][]byte, Contributions) {
	if ids := p.ids[trustee]; len(ids) > 0 {
		return ids, p.rest
	}
	return nil, p.all
}

// TestDecryptSumWithParts: two frontends each have the trustees verify the updates they took
// (ExtendParts), one update while the round collects and the next at its close, and the
// round decrypts with the leader streaming only the fifth update. A trustee that was down when
// a part was sent, or no longer holds it, gets every update from the leader instead, and the
// round still decrypts.
func TestDecryptSumWithParts(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	client := newClient(t, k, cluster)
	ctx := context.Background()
	const dim = 9000
	for _, tc := range []struct {
		name  string
		round uint64
		// down is a trustee stopped while the parts are sent; lost, one whose parts are
		// replaced by ids it never issued.
		down, lost int
	}{
		{"every trustee takes the parts", 1, -1, -1},
		{"a trustee lost its parts", 2, -1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := k.sealedRound(t, k.devices(t, 5), tc.round, dim)
			of := PartOf{Round: tc.round, Dimension: dim, MinParticipants: testPrivacy.MinParticipants}
			p := parted{all: r.contribs, ids: map[string][][]byte{}, rest: r.contribs[4:]}
			// The second frontend's contributions go encoded, as a frontend's log holds them.
			for _, frontend := range []struct{ first, both PartContributions }{
				{SliceContributions(r.contribs[:1]), SliceContributions(r.contribs[:2])},
				{encodedSlice{r.contribs[2:3]}, encodedSlice{r.contribs[2:4]}},
			} {
				held, why, err := client.ExtendParts(ctx, of, nil, frontend.first)
				if err != nil || len(why) > 0 {
					t.Fatalf("ExtendParts, the first update: %v %v", err, why)
				}
				held, why, err = client.ExtendParts(ctx, of, held, frontend.both)
				if err != nil || len(why) > 0 {
					t.Fatalf("ExtendParts, both: %v %v", err, why)
				}
				for trustee, h := range held {
					id := h.ID
					if h.Len != 2 {
						t.Fatalf("trustee %s holds %d of the frontend's updates, want 2", trustee, h.Len)
					}
					if trustee == k.shares[max(tc.lost, 0)].TrusteeID() && tc.lost >= 0 {
						id = make([]byte, 32)
					}
					p.ids[trustee] = append(p.ids[trustee], id)
				}
			}
			res, err := client.DecryptSum(ctx, r.sum, p, testPrivacy)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, res.Sum, r.want)
			if len(res.Committed) != 3 {
				t.Fatalf("committed: %v, want all three", res.Committed)
			}
		})
	}
	t.Run("a trustee down while the part is sent", func(t *testing.T) {
		r := k.sealedRound(t, k.devices(t, 4), 3, dim)
		of := PartOf{Round: 3, Dimension: dim, MinParticipants: testPrivacy.MinParticipants}
		// A trustee that no longer holds what it held (it restarted) is sent every update.
		lost := map[string]Held{k.shares[0].TrusteeID(): {ID: make([]byte, 32), Len: 1}}
		cluster.Stop(2)
		held, why, err := client.ExtendParts(ctx, of, lost, r.contribs[:2])
		if err != nil {
			t.Fatal(err)
		}
		if len(held) != 2 || held[k.shares[2].TrusteeID()].ID != nil {
			t.Fatalf("parts taken by %d trustees (%v), want the two that are up", len(held), why)
		}
		a, b := held[k.shares[0].TrusteeID()], held[k.shares[1].TrusteeID()]
		if a.Len != 2 || string(a.ID) != string(b.ID) {
			t.Fatalf("the trustee that lost its part holds %d updates as part %x, the other 2 as %x", a.Len, a.ID, b.ID)
		}
	})
}

// TestAttackPartsCountADeviceTwice: a coordinator short of m_min distinct devices names a
// part twice, or a part and one of its updates streamed again, or a part of another round, so
// that one device's update counts twice and the "sum" holds fewer devices than announced.
// Each is refused; so is a part the trustee never verified.
func TestAttackPartsCountADeviceTwice(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	tc := cluster.Clients[0]
	const dim = 100
	devs := k.devices(t, 2)
	r := k.sealedRound(t, devs, 1, dim) // two devices; the trustees' m_min is 3
	partOf := func(round uint64, n int) *vigilv1.SumHeader {
		h := header(k, round, dim, n)
		return h
	}
	a, err := commitPart(tc, partOf(1, 2), r.contribs)
	if err != nil {
		t.Fatal(err)
	}
	withParts := func(n int, parts ...[]byte) *vigilv1.SumHeader {
		h := header(k, 1, dim, n)
		h.Parts = parts
		return h
	}
	_, err = commitSum(tc, withParts(4, a.PartId, a.PartId), nil)
	wantRefusal(t, "a part named twice", err, codes.PermissionDenied, "contributes twice")
	_, err = commitSum(tc, withParts(3, a.PartId), r.contribs[:1])
	wantRefusal(t, "a part and one of its updates streamed again", err, codes.PermissionDenied, "contributes twice")

	r2 := k.sealedRound(t, k.devices(t, 3), 2, dim)
	h := header(k, 2, dim, 3)
	h.Parts = [][]byte{a.PartId}
	_, err = commitSum(tc, h, r2.contribs[:1])
	wantRefusal(t, "a part of round 1 in round 2's sum", err, codes.PermissionDenied, "is of round 1")

	_, err = commitSum(tc, withParts(3, make([]byte, 32)), r.contribs[:1])
	wantRefusal(t, "a part never sent", err, codes.NotFound, "unknown part")

	nested := partOf(1, 1)
	nested.Parts = [][]byte{a.PartId}
	_, err = commitPart(tc, nested, r.contribs[:1])
	wantRefusal(t, "a part naming parts", err, codes.PermissionDenied, "names parts of its own")

	_, err = commitPart(tc, partOf(1, 1), r.contribs)
	wantRefusal(t, "a part with more updates than its header says", err, codes.PermissionDenied, "more than the 1 contributions")

	// A part extended: by an update it holds, past its header's count, in another round's
	// header, from a part never sent; and an extension named in a sum with the part it extends.
	first, err := commitPart(tc, partOf(1, 1), r.contribs[:1])
	if err != nil {
		t.Fatal(err)
	}
	extending := func(round uint64, n int, prior []byte) *vigilv1.SumHeader {
		h := partOf(round, n)
		h.Extends = prior
		return h
	}
	_, err = commitPart(tc, extending(1, 2, first.PartId), r.contribs[:1])
	wantRefusal(t, "a part extended by an update it holds", err, codes.PermissionDenied, "contributes twice")
	_, err = commitPart(tc, extending(1, 1, first.PartId), r.contribs[1:])
	wantRefusal(t, "an extension counted without the part it extends", err, codes.PermissionDenied, "more than the 1 contributions")
	_, err = commitPart(tc, extending(2, 2, first.PartId), r2.contribs[:1])
	wantRefusal(t, "a part of round 1 extended in round 2", err, codes.PermissionDenied, "is of round 1")
	_, err = commitPart(tc, extending(1, 2, make([]byte, 32)), r.contribs[1:])
	wantRefusal(t, "a part never sent extended", err, codes.NotFound, "unknown part")
	_, err = commitSum(tc, extending(1, 3, first.PartId), thirdDevice(t, k, dim).contribs)
	wantRefusal(t, "a sum extending a part", err, codes.PermissionDenied, "names a part it extends")
	both, err := commitPart(tc, extending(1, 2, first.PartId), r.contribs[1:])
	if err != nil || string(both.PartId) != string(a.PartId) {
		t.Fatalf("the part extended to both updates: %v; the same part as both sent at once: %v", err, string(both.PartId) == string(a.PartId))
	}
	_, err = commitSum(tc, withParts(3, first.PartId, both.PartId), nil)
	wantRefusal(t, "an extended part named with its extension", err, codes.PermissionDenied, "contributes twice")

	// The same part sent again is the same part, and the honest sum with it commits.
	again, err := commitPart(tc, partOf(1, 2), r.contribs)
	if err != nil || string(again.PartId) != string(a.PartId) {
		t.Fatalf("the same part again: %v, same id %v", err, string(again.PartId) == string(a.PartId))
	}
	if _, err := commitSum(tc, withParts(3, a.PartId), thirdDevice(t, k, dim).contribs); err != nil {
		t.Fatalf("a part and a third device: %v", err)
	}
}

// thirdDevice is round 1 with the third device alone.
func thirdDevice(t *testing.T, k *testKey, dim int) testRound {
	return k.sealedRound(t, k.devices(t, 3)[2:], 1, dim)
}

// emptyPart is a part of round, named by id alone, with an empty c1 sum of 100 parameters.
func emptyPart(t *testing.T, k *testKey, round uint64, id byte) *part {
	c1, err := he.NewC1Sum(k.params, k.key.Epoch, 100)
	if err != nil {
		t.Fatal(err)
	}
	return &part{id: [32]byte{id}, hdr: header(k, round, 100, 1), c1: c1, size: int64(c1.Size())}
}

// heldParts lists the ids of the parts s holds, each emptyPart's one byte, in order.
func heldParts(s *partStore) []byte {
	var held []byte
	for id := range s.parts {
		held = append(held, id[0])
	}
	slices.Sort(held)
	return held
}

// TestPartStoreBudget: parts of a round make room by dropping other rounds' parts, first stored
// first, never each other's, and parts of rounds already decrypted are dropped.
func TestPartStoreBudget(t *testing.T) {
	k := newTestKey(t, 3, 2)
	mk := func(round uint64, id byte) *part { return emptyPart(t, k, round, id) }
	size := mk(1, 0).size
	s := newPartStore(2 * size)
	for _, step := range []struct {
		p       *part
		last    uint64
		wantErr error
		held    []byte
	}{
		{mk(1, 1), 0, nil, []byte{1}},
		{mk(1, 2), 0, nil, []byte{1, 2}},
		{mk(1, 3), 0, ErrPartsFull, []byte{1, 2}},
		{mk(2, 4), 0, nil, []byte{2, 4}},
		{mk(3, 5), 3, nil, []byte{5}},
		// Parts of a round far ahead make room for parts of the rounds that come.
		{mk(100, 6), 3, nil, []byte{5, 6}},
		{mk(4, 7), 3, nil, []byte{6, 7}},
		{mk(4, 8), 3, nil, []byte{7, 8}},
	} {
		err := s.put(step.p, nil, step.last)
		if !errors.Is(err, step.wantErr) {
			t.Fatalf("put part %d of round %d: %v, want %v", step.p.id[0], step.p.hdr.GetRound(), err, step.wantErr)
		}
		if held := heldParts(s); string(held) != string(step.held) {
			t.Fatalf("after part %d: holds %v, want %v", step.p.id[0], held, step.held)
		}
	}
}

// TestPartStoreExtensions: a part another extends is kept for a resent extension until that
// one is extended in turn, and is the first to make room for a round's new parts.
func TestPartStoreExtensions(t *testing.T) {
	k := newTestKey(t, 3, 2)
	parts := map[byte]*part{}
	for id := range byte(7) {
		parts[id] = emptyPart(t, k, 1, id)
	}
	s := newPartStore(3 * parts[0].size)
	for _, step := range []struct {
		id, extends byte // 0: extends none
		wantErr     error
		held        []byte
	}{
		{1, 0, nil, []byte{1}},
		{2, 1, nil, []byte{1, 2}},
		{3, 2, nil, []byte{2, 3}},    // 1 is dropped: 3 holds all of 2, which holds all of 1
		{4, 0, nil, []byte{2, 3, 4}}, // another frontend's part
		{5, 0, nil, []byte{3, 4, 5}}, // 2 makes room
		{6, 0, ErrPartsFull, []byte{3, 4, 5}},
	} {
		var prior *part
		if step.extends != 0 {
			prior = parts[step.extends]
		}
		err := s.put(parts[step.id], prior, 0)
		if !errors.Is(err, step.wantErr) {
			t.Fatalf("put part %d: %v, want %v", step.id, err, step.wantErr)
		}
		if held := heldParts(s); string(held) != string(step.held) {
			t.Fatalf("after part %d: holds %v, want %v", step.id, held, step.held)
		}
	}
}

// TestPartRecordsCheckedWhenMerged: a part's device records are checked again when a sum names
// it, as streamed contributions' are: a part kept past its records' expiry does not count.
func TestPartRecordsCheckedWhenMerged(t *testing.T) {
	k := newTestKey(t, 3, 2)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, err := StartLocal(LocalConfig{Shares: k.shares, Signers: k.signers, Root: k.root, MinContributors: testMinContributors, StateDir: t.TempDir(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	const dim = 100
	r := k.sealedRound(t, k.devices(t, 3), 1, dim) // records valid for an hour
	p, err := commitPart(c.Clients[0], header(k, 1, dim, 3), r.contribs)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	h := header(k, 1, dim, 3)
	h.Parts = [][]byte{p.PartId}
	_, err = commitSum(c.Clients[0], h, nil)
	wantRefusal(t, "a part whose records expired since", err, codes.PermissionDenied, "record expired")
}

// TestAttackExtendedPartBranches: a malicious coordinator extends one part two ways (A+d1,
// A+d2) and names both branches in a sum, so that A's device counts twice; names an extension
// and streams its prior's device too; extends a part under another m_min or dimension, or
// announces fewer contributors than the prior holds. Each is refused, and the honest sum with
// one branch commits.
func TestAttackExtendedPartBranches(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	tc := cluster.Clients[0]
	const dim = 100
	r := k.sealedRound(t, k.devices(t, 4), 1, dim)
	ext := func(n int, prior []byte) *vigilv1.SumHeader {
		h := header(k, 1, dim, n)
		h.Extends = prior
		return h
	}
	a, err := commitPart(tc, header(k, 1, dim, 1), r.contribs[:1])
	if err != nil {
		t.Fatal(err)
	}
	b, err := commitPart(tc, ext(2, a.PartId), r.contribs[1:2])
	if err != nil {
		t.Fatal(err)
	}
	c, err := commitPart(tc, ext(2, a.PartId), r.contribs[2:3])
	if err != nil {
		t.Fatalf("a second branch of the same prior: %v", err)
	}
	h := header(k, 1, dim, 4)
	h.Parts = [][]byte{b.PartId, c.PartId}
	_, err = commitSum(tc, h, nil)
	wantRefusal(t, "two branches of one part", err, codes.PermissionDenied, "contributes twice")
	h = header(k, 1, dim, 3)
	h.Parts = [][]byte{b.PartId}
	_, err = commitSum(tc, h, r.contribs[:1])
	wantRefusal(t, "an extension and its prior's device streamed", err, codes.PermissionDenied, "contributes twice")
	// Another m_min / dimension in the extension's header.
	hm := ext(2, a.PartId)
	hm.MinParticipants++
	_, err = commitPart(tc, hm, r.contribs[3:4])
	wantRefusal(t, "an extension under another m_min", err, codes.PermissionDenied, "m_min")
	hd := ext(2, a.PartId)
	hd.Dimension = dim + 1
	_, err = commitPart(tc, hd, r.contribs[3:4])
	wantRefusal(t, "an extension of another dimension", err, codes.PermissionDenied, "dimension")
	// An extension of a part whose header says fewer contributors than the part holds.
	_, err = commitPart(tc, ext(1, b.PartId), nil)
	wantRefusal(t, "an extension announcing fewer than its prior", err, codes.PermissionDenied, "more than")
	// The honest sum still commits: B (d0, d1) with d2 and d3 streamed.
	h = header(k, 1, dim, 4)
	h.Parts = [][]byte{b.PartId}
	if _, err := commitSum(tc, h, r.contribs[2:4]); err != nil {
		t.Fatalf("honest sum: %v", err)
	}
}

// TestPartStoreForgetsDroppedParts: a part dropped for room is no longer in memory, though the
// part that extends it is kept (a pointer into it once kept its c1 sum, up to twice the budget
// in all; found by a review).
func TestPartStoreForgetsDroppedParts(t *testing.T) {
	k := newTestKey(t, 3, 2)
	mk := func(id byte, round uint64) *part { return emptyPart(t, k, round, id) }
	size := mk(0, 1).size
	s := newPartStore(2 * size)
	q := mk(1, 1)
	wq := weak.Make(q)
	if err := s.put(q, nil, 0); err != nil {
		t.Fatal(err)
	}
	p := mk(2, 1)
	if err := s.put(p, q, 0); err != nil { // p extends q
		t.Fatal(err)
	}
	q = nil
	// Another frontend's part needs the room: q, spent, is dropped.
	if err := s.put(mk(3, 1), nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.parts[[32]byte{1}]; ok {
		t.Fatal("the extended part was not dropped for room")
	}
	t.Logf("store accounts %d of %d bytes", s.used, s.budget)
	for range 3 {
		runtime.GC()
	}
	if wq.Value() != nil {
		t.Errorf("the dropped prior (%d bytes of c1) is still reachable: memory held is %d bytes, the budget %d",
			size, s.used+size, s.budget)
	}
	runtime.KeepAlive(s)
}

// encodedSlice is SliceContributions that also gives them encoded, as a frontend's log does.
type encodedSlice struct{ SliceContributions }

func (e encodedSlice) From(n int) Contributions { return encodedSlice{e.SliceContributions[n:]} }

func (e encodedSlice) Encoded() iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for _, c := range e.SliceContributions {
			if !yield(proto.Marshal(c)) {
				return
			}
		}
	}
}

// TestEncodedPartIsSumPart: a contribution sent encoded is, on the wire, the SumPart that holds
// it.
func TestEncodedPartIsSumPart(t *testing.T) {
	c := &vigilv1.Contribution{DeviceId: "dev-a", Nonce: []byte{1, 2}, C1: [][]byte{make([]byte, 300), {7}}, Signature: []byte("sig")}
	raw, err := proto.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	codec := sumStreamCodec()
	got, err := codec.Marshal(encodedPart(raw))
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(&vigilv1.SumPart{Part: &vigilv1.SumPart_Contribution{Contribution: c}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Materialize(), want) {
		t.Fatalf("an encoded part is %x, the SumPart %x", got.Materialize(), want)
	}
	var back vigilv1.SumPart
	if err := codec.Unmarshal(got, &back); err != nil || !proto.Equal(back.GetContribution(), c) {
		t.Fatalf("decoded back: %v, %v", &back, err)
	}
}
