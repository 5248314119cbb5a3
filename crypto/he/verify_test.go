package he

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
)

// TestShareC1MatchesTheSum: trustees that add the updates' c1 polynomials themselves and
// share that sum give shares that combine with the coordinator's sealed sum (its c0 and the
// same c1) to the sum of the updates, within the precision bound; and the c1 digest the
// trustees commit to equals the sealed sum's.
func TestShareC1MatchesTheSum(t *testing.T) {
	f := newFixture(t, 3, 2)
	rng := testRNG(t)
	const dim, devices, round = 9000, 5, 4
	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	acc, _ := NewAccumulator(f.params, f.key.Epoch, dim)
	c1s, _ := NewC1Sum(f.params, f.key.Epoch, dim)
	want := make([]float64, dim)
	for d := range devices {
		u := randomUpdate(rng, dim, 1)
		for i := range u {
			want[i] += u[i]
		}
		b := UpdateBinding(f.key.Epoch, round, "dev", nonce(d))
		cts, err := enc.Encrypt(u, 1, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(cts, b); err != nil {
			t.Fatal(err)
		}
		_, c1, err := UpdateParts(f.params, cts)
		if err != nil {
			t.Fatal(err)
		}
		if err := c1s.Add(c1); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := acc.Seal(round)
	if err != nil {
		t.Fatal(err)
	}
	if sum.C1Digest() != c1s.Digest() {
		t.Fatal("the trustees' c1 digest differs from the sealed sum's")
	}
	c1s = roundTrip(t, "C1Sum", c1s, (*C1Sum).MarshalBinary, func(b []byte) (*C1Sum, error) { return ParseC1Sum(f.params, b) })
	decs := f.decryptors(t)
	active := []uint64{f.shares[0].Point, f.shares[2].Point}
	var shares [][][]byte
	for _, i := range []int{0, 2} {
		s, err := decs[i].ShareC1(c1s, round, active)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, s)
	}
	got, err := Combine(f.key, sum, shares, 1)
	if err != nil {
		t.Fatal(err)
	}
	bound := f.params.ErrorBound(devices, 3, 2)
	if d := maxAbsDiff(got, want); d > bound {
		t.Fatalf("decrypted sum off by %.3g, bound %.3g", d, bound)
	}
	// Shares made for another round do not combine with this round's sum.
	other, err := decs[1].ShareC1(c1s, round+1, []uint64{f.shares[0].Point, f.shares[1].Point})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Combine(f.key, sum, [][][]byte{shares[0], other}, 1); err == nil {
		t.Fatal("a share bound to another round combined")
	}
}

func TestC1SumRejects(t *testing.T) {
	p := DefaultParams()
	s, err := NewC1Sum(p, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	unreduced := make([]byte, p.C1Bytes())
	binary.LittleEndian.PutUint64(unreduced[8:], ^uint64(0))
	for name, c := range map[string]struct {
		c1   [][]byte
		want error
	}{
		"no polynomials":    {nil, ErrDimension},
		"two polynomials":   {[][]byte{make([]byte, p.C1Bytes()), make([]byte, p.C1Bytes())}, ErrDimension},
		"short polynomial":  {[][]byte{make([]byte, p.C1Bytes()-8)}, ErrMalformed},
		"unreduced residue": {[][]byte{unreduced}, ErrMalformed},
	} {
		if err := s.Add(c.c1); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if s.Count() != 0 {
		t.Fatalf("refused polynomials counted: %d", s.Count())
	}
	if _, err := NewDecryptor(nil); err == nil {
		t.Fatal("nil share accepted")
	}
}

// FuzzParseC1Sum: whatever a trustee's journal holds, ParseC1Sum either refuses it or returns
// a sum that encodes back to exactly those bytes.
func FuzzParseC1Sum(f *testing.F) {
	p := DefaultParams()
	s, _ := NewC1Sum(p, 3, 10)
	c1 := make([]byte, p.C1Bytes())
	c1[0] = 7
	s.Add([][]byte{c1})
	good, _ := s.MarshalBinary()
	f.Add(good)
	f.Add(good[:c1HeaderSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseC1Sum(p, data)
		if err != nil {
			return
		}
		again, _ := got.MarshalBinary()
		if string(again) != string(data) {
			t.Fatal("parsed c1 sum does not re-encode to its input")
		}
	})
}

// TestC1SumMerge: c1 sums of disjoint parts of a round's updates, merged, are the c1 sum of
// all of them; a sum of another dimension or epoch is refused and changes nothing.
func TestC1SumMerge(t *testing.T) {
	f := newFixture(t, 3, 2)
	rng := testRNG(t)
	const dim, devices = 9000, 5
	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := NewC1Sum(f.params, f.key.Epoch, dim)
	a, _ := NewC1Sum(f.params, f.key.Epoch, dim)
	b, _ := NewC1Sum(f.params, f.key.Epoch, dim)
	for d := range devices {
		cts, err := enc.Encrypt(randomUpdate(rng, dim, 1), 1, UpdateBinding(f.key.Epoch, 4, "dev", nonce(d)))
		if err != nil {
			t.Fatal(err)
		}
		_, c1, err := UpdateParts(f.params, cts)
		if err != nil {
			t.Fatal(err)
		}
		part := a
		if d >= 2 {
			part = b
		}
		if err := errors.Join(whole.Add(c1), part.Add(c1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if a.Digest() != whole.Digest() || a.Count() != devices {
		t.Fatalf("merged parts: count %d, digest differs %v", a.Count(), a.Digest() != whole.Digest())
	}
	before := a.Digest()
	for name, o := range map[string]func() (*C1Sum, error){
		"dimension": func() (*C1Sum, error) { return NewC1Sum(f.params, f.key.Epoch, dim+1) },
		"epoch":     func() (*C1Sum, error) { return NewC1Sum(f.params, f.key.Epoch+1, dim) },
	} {
		other, err := o()
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Merge(other); !errors.Is(err, ErrDimension) {
			t.Errorf("another %s merged: %v", name, err)
		}
	}
	if a.Digest() != before || a.Count() != devices {
		t.Fatal("a refused merge changed the sum")
	}
}

// TestAccumulatorMerge: sums of disjoint parts of a round's updates, merged, are the sum of
// all of them, and each part's updates stay in the replay check; a sum of another dimension is
// refused and changes nothing.
func TestAccumulatorMerge(t *testing.T) {
	f := newFixture(t, 3, 2)
	rng := testRNG(t)
	const dim, devices, round = 9000, 5, 4
	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	whole, _ := NewAccumulator(f.params, f.key.Epoch, dim)
	a, _ := NewAccumulator(f.params, f.key.Epoch, dim)
	b, _ := NewAccumulator(f.params, f.key.Epoch, dim)
	var fps [][32]byte
	for d := range devices {
		bind := UpdateBinding(f.key.Epoch, round, "dev", nonce(d))
		cts, err := enc.Encrypt(randomUpdate(rng, dim, 1), 1, bind)
		if err != nil {
			t.Fatal(err)
		}
		part := a
		if d >= 2 {
			part = b
		}
		fp, err := part.Fingerprint(cts, bind)
		if err != nil {
			t.Fatal(err)
		}
		fps = append(fps, fp)
		if err := errors.Join(whole.Add(cts, bind), part.Add(cts, bind)); err != nil {
			t.Fatal(err)
		}
	}
	if b.Seen(fps[0]) || !b.Seen(fps[4]) {
		t.Fatal("a part's replay check does not hold exactly its updates")
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if a.Count() != devices || !slices.Equal(a.sum, whole.sum) {
		t.Fatalf("merged parts: %d updates, sums equal %v", a.Count(), slices.Equal(a.sum, whole.sum))
	}
	for _, fp := range fps {
		if !a.Seen(fp) {
			t.Fatal("a merged update left the replay check")
		}
	}
	other, _ := NewAccumulator(f.params, f.key.Epoch, dim+1)
	if err := a.Merge(other); !errors.Is(err, ErrDimension) || a.Count() != devices || !slices.Equal(a.sum, whole.sum) {
		t.Fatalf("a sum of another dimension: %v", err)
	}
}
