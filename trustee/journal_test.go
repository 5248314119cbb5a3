package trustee

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigilauth/vigil/crypto/he"
)

func sampleState() State {
	return State{
		LastRound: 42,
		Request:   [32]byte{1, 2, 3},
		Response:  [][]byte{[]byte("share-0"), {}, []byte("share-2")},
		Committed: Committed{Round: 43, SetDigest: [32]byte{9}, Contributors: 5, C1Digest: [32]byte{8},
			Commitment: []byte("signed commitment"), C1: []byte("c1 sum")},
	}
}

func TestJournalRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), JournalFile)
	j := FileJournal{Path: path}
	st, err := j.Load()
	if err != nil || st.LastRound != 0 || st.Response != nil {
		t.Fatalf("missing journal: %+v, %v; want the empty state", st, err)
	}
	want := sampleState()
	if err := j.Save(want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %04o, want 0600", fi.Mode().Perm())
	}
	got, err := j.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshalState(got), marshalState(want)) {
		t.Fatalf("journal round trip: got %+v, want %+v", got, want)
	}

	data, _ := os.ReadFile(path)
	for _, cut := range []int{0, 5, len(data) / 2, len(data) - 1} {
		if _, err := parseState(data[:cut]); err == nil {
			t.Errorf("journal truncated to %d bytes accepted", cut)
		}
	}
	damaged := bytes.Clone(data)
	damaged[10] ^= 1
	os.WriteFile(path, damaged, 0o600)
	if _, err := j.Load(); err == nil {
		t.Error("damaged journal accepted")
	}
	os.WriteFile(path, data, 0o644)
	os.Chmod(path, 0o644)
	if _, err := j.Load(); !errors.Is(err, ErrInsecureFile) {
		t.Errorf("world-readable journal: %v, want ErrInsecureFile", err)
	}
}

func TestShareFile(t *testing.T) {
	k := newTestKey(t, 2, 2)
	path := filepath.Join(t.TempDir(), ShareFile)
	if err := SaveShare(path, k.shares[0]); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("share file mode %04o, want 0600", fi.Mode().Perm())
	}
	s, err := LoadShare(k.params, path)
	if err != nil {
		t.Fatal(err)
	}
	if s.TrusteeID() != k.shares[0].TrusteeID() || s.KeyDigest != k.shares[0].KeyDigest {
		t.Fatal("share changed on disk")
	}
	os.Chmod(path, 0o640)
	if _, err := LoadShare(k.params, path); !errors.Is(err, ErrInsecureFile) {
		t.Fatalf("group-readable share: %v, want ErrInsecureFile", err)
	}
	os.Chmod(path, 0o600)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-1], 0o600)
	if _, err := LoadShare(k.params, path); !errors.Is(err, he.ErrMalformed) {
		t.Fatalf("truncated share: %v, want he.ErrMalformed", err)
	}
}

func TestDecide(t *testing.T) {
	st := State{}
	set := func(b byte) [32]byte { return [32]byte{b} }
	commit := func(round uint64, s byte) {
		saved, err := commitDecision(&st, round, set(s))
		if err != nil || saved != nil {
			t.Fatalf("commit round %d: %v, %v", round, saved, err)
		}
		st.Committed = Committed{Round: round, SetDigest: set(s), Contributors: 5, Commitment: []byte{byte(round)}}
	}
	r := func(round uint64, s, d byte) decrypt {
		sd := set(s)
		return decrypt{round: round, set: sd[:], contributors: 5, digest: [32]byte{d}}
	}
	commit(1, 1)
	if saved, err := commitDecision(&st, 1, set(1)); err != nil || saved == nil {
		t.Fatalf("repeated commitment to the same set: %v, %v", saved, err)
	}
	if _, err := commitDecision(&st, 1, set(2)); !errors.Is(err, ErrOtherSet) {
		t.Fatalf("second set for round 1: %v, want ErrOtherSet", err)
	}
	cases := []struct {
		name   string
		req    decrypt
		want   error
		cached bool
	}{
		{"round not committed", r(2, 1, 1), ErrNotCommitted, false},
		{"other set", r(1, 2, 1), ErrOtherSet, false},
		{"first round", r(1, 1, 1), nil, false},
		{"identical retry", r(1, 1, 1), nil, true},
		{"same round, other request", r(1, 1, 2), ErrRoundDone, false},
		{"earlier round", r(0, 1, 3), ErrRoundDone, false},
	}
	for _, c := range cases {
		cached, err := decide(&st, c.req)
		if !errors.Is(err, c.want) || (cached != nil) != c.cached {
			t.Fatalf("%s: cached %v, err %v; want cached %v, err %v", c.name, cached != nil, err, c.cached, c.want)
		}
		if err == nil && cached == nil {
			st.LastRound, st.Request, st.Response = c.req.round, c.req.digest, [][]byte{{byte(c.req.round)}}
		}
	}
	if _, err := commitDecision(&st, 1, set(1)); err != nil {
		t.Fatalf("repeated commitment after decryption: %v", err)
	}
	if _, err := commitDecision(&st, 1, set(3)); !errors.Is(err, ErrOtherSet) {
		t.Fatalf("other set after decryption: %v, want ErrOtherSet", err)
	}
	commit(3, 3)
	if _, err := commitDecision(&st, 2, set(2)); !errors.Is(err, ErrRoundDone) {
		t.Fatalf("commitment to a round before the committed one: %v, want ErrRoundDone", err)
	}
}

func FuzzJournal(f *testing.F) {
	f.Add(marshalState(sampleState()))
	f.Add(marshalState(State{}))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseState(data)
		if err == nil && !bytes.Equal(marshalState(st), data) {
			t.Fatal("parsed journal does not re-encode to its input")
		}
	})
}
