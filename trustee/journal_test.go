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
		Sums:      [][32]byte{{9}, {8}, {7}},
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
	r := func(round uint64, contributors int, d, s byte) request {
		return request{round: round, contributors: contributors, digest: [32]byte{d}, sum: [32]byte{s}}
	}
	cases := []struct {
		name   string
		req    request
		want   error
		cached bool
	}{
		{"first round", r(1, 5, 1, 1), nil, false},
		{"identical retry", r(1, 5, 1, 1), nil, true},
		{"same round, other request", r(1, 5, 2, 1), ErrRoundDone, false},
		{"earlier round", r(0, 5, 3, 3), ErrRoundDone, false},
		{"old sum, new round", r(2, 5, 4, 1), ErrSumDone, false},
		{"too few", r(2, 2, 5, 5), ErrTooFewContributors, false},
		{"next round", r(2, 5, 6, 6), nil, false},
	}
	for _, c := range cases {
		cached, err := decide(&st, 3, c.req)
		if !errors.Is(err, c.want) || (cached != nil) != c.cached {
			t.Fatalf("%s: cached %v, err %v; want cached %v, err %v", c.name, cached != nil, err, c.cached, c.want)
		}
		if err == nil && cached == nil {
			st = record(st, c.req, [][]byte{{byte(c.req.round)}})
		}
	}
	if st.LastRound != 2 || len(st.Sums) != 2 {
		t.Fatalf("state %+v", st)
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
