package he

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"testing"
)

// rawCombine adds shares to ciphertext c (c0 and c1 as in a sum blob) and decodes, with none
// of Combine's checks: it is what a coordinator could compute with whatever it holds.
func rawCombine(p Params, c0 []uint64, shares [][]byte, dim int, clip float64) []float64 {
	acc := slices.Clone(c0)
	for _, s := range shares {
		addRNS(p, acc, s[blobHeaderSize:])
	}
	out := make([]float64, dim)
	for i := range out {
		out[i] = p.decodeCoeff(acc[i], acc[p.N()+i]) * clip / p.scale
	}
	return out
}

// medianAbsDiff is robust to a few lucky coefficients.
func medianAbsDiff(a, b []float64) float64 {
	d := make([]float64, len(a))
	for i := range a {
		d[i] = math.Abs(a[i] - b[i])
	}
	sort.Float64s(d)
	return d[len(d)/2]
}

// garbage is the error level of a failed decryption: a uniform value modulo Q decodes to
// about Q/4 / 2^100 = 262,000 clip norms on average; anything above 1,000 C is not the data.
const garbage = 1000.0

// TestThresholdAccess: any t of n trustees decrypt the sum; t-1 cannot, whatever they do with
// their shares (n = 3, t = 2, and n = 5, t = 3).
func TestThresholdAccess(t *testing.T) {
	rng := testRNG(t)
	for _, c := range []struct{ n, t int }{{3, 2}, {5, 3}} {
		t.Run(fmt.Sprintf("%d-of-%d", c.t, c.n), func(t *testing.T) {
			f := newFixture(t, c.n, c.t)
			const dim, clip = 5000, 1.0
			updates := [][]float64{randomUpdate(rng, dim, clip), randomUpdate(rng, dim, clip), randomUpdate(rng, dim, clip)}
			want := plainSum(updates)
			decs := f.decryptors(t)
			// Every active set of t trustees, each on a fresh sum: a ciphertext is never
			// decrypted twice.
			for round, set := range subsets(c.n, c.t) {
				sum, _ := encryptAll(t, f, uint64(round), updates, clip).Seal(uint64(round))
				got, err := f.decrypt(t, sum, set, clip)
				if err != nil {
					t.Fatalf("trustees %v: %v", set, err)
				}
				if e := maxAbsDiff(got, want); e > 1e-6*clip {
					t.Fatalf("trustees %v: max error %.3e", set, e)
				}
			}

			// t-1 trustees: Combine refuses, and the raw arithmetic is garbage, whether the
			// t-1 shares were made for an active set of t-1 (the Combiner refuses that too) or
			// for a set of t whose last member stays silent.
			sum, _ := encryptAll(t, f, 100, updates, clip).Seal(100)
			parsed, err := ParseSum(f.params, sum.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
			if err != nil {
				t.Fatal(err)
			}
			active := make([]uint64, c.t)
			for i := range active {
				active[i] = f.shares[i].Point
			}
			if _, err := decs[0].Share(parsed, active[:c.t-1]); !isErr(err, ErrThreshold) {
				t.Fatalf("share for an active set of t-1: %v, want ErrThreshold", err)
			}
			var partial [][][]byte
			for i := 0; i < c.t-1; i++ {
				s, err := decs[i].Share(parsed, active)
				if err != nil {
					t.Fatal(err)
				}
				partial = append(partial, s)
			}
			if _, err := Combine(f.key, sum, partial, clip); !isErr(err, ErrThreshold) {
				t.Fatalf("Combine with t-1 shares: %v, want ErrThreshold", err)
			}
			c0, _ := parsed.polys(0)
			first := make([][]byte, len(partial))
			for i := range partial {
				first[i] = partial[i][0]
			}
			got := rawCombine(f.params, c0, first, min(dim, f.params.N()), clip)
			if e := medianAbsDiff(got, want[:len(got)]); e < garbage*clip {
				t.Fatalf("t-1 shares decrypt: median error %.3g C", e/clip)
			}
		})
	}
}

// TestCoordinatorCannotDecryptUpdate: with everything the coordinator stores and receives
// (the public key, every device's ciphertexts, the sum and the t decryption shares of the
// sum) it cannot decrypt any single device's update.
func TestCoordinatorCannotDecryptUpdate(t *testing.T) {
	f := newFixture(t, 3, 2)
	rng := testRNG(t)
	const dim, clip, round = 4000, 1.0, 3
	enc, _ := NewEncryptor(f.key)
	acc, _ := NewAccumulator(f.params, f.key.Epoch, dim)
	var updates [][]float64
	var cts [][][]byte
	for i := range 4 {
		u := randomUpdate(rng, dim, clip)
		b := UpdateBinding(f.key.Epoch, round, fmt.Sprintf("dev-%d", i), nonce(i))
		ct, err := enc.Encrypt(u, clip, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(ct, b); err != nil {
			t.Fatal(err)
		}
		updates, cts = append(updates, u), append(cts, ct)
	}
	sum, _ := acc.Seal(round)
	parsed, _ := ParseSum(f.params, sum.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
	decs := f.decryptors(t)
	active := []uint64{f.shares[0].Point, f.shares[1].Point}
	var shares [][]byte
	for _, d := range decs[:2] {
		s, err := d.Share(parsed, active)
		if err != nil {
			t.Fatal(err)
		}
		shares = append(shares, s[0])
	}
	// The shares do decrypt the sum ...
	sc0, _ := parsed.polys(0)
	if e := maxAbsDiff(rawCombine(f.params, sc0, shares, dim, clip), plainSum(updates)); e > 1e-6 {
		t.Fatalf("the sum does not decrypt: %.3e", e)
	}
	// ... but not device 0's ciphertext, neither as sent nor as recovered homomorphically
	// from the sum by subtracting the other devices' ciphertexts (which gives exactly device
	// 0's ciphertext: the shares are tied to the sum's c1, not to the plaintext).
	dev0 := cts[0][0][blobHeaderSize : blobHeaderSize+f.params.polyBytes()]
	c0 := make([]uint64, f.params.polyLen())
	readCoeffs(c0, dev0)
	if e := medianAbsDiff(rawCombine(f.params, c0, shares, dim, clip), updates[0]); e < garbage*clip {
		t.Fatalf("sum shares applied to device 0's ciphertext: median error %.3g C", e/clip)
	}
	sub := slices.Clone(sc0)
	for _, ct := range cts[1:] {
		neg := make([]uint64, f.params.polyLen())
		readCoeffs(neg, ct[0][blobHeaderSize:])
		for i := range sub {
			q := f.params.q[i/f.params.N()]
			sub[i] = (sub[i] + q - neg[i]) % q
		}
	}
	if !slices.Equal(sub, c0) {
		t.Fatal("sum minus others is not device 0's c0")
	}
	if e := medianAbsDiff(rawCombine(f.params, sub, shares, dim, clip), updates[0]); e < garbage*clip {
		t.Fatalf("sum shares applied to the isolated ciphertext: median error %.3g C", e/clip)
	}
	// Without shares (public key only) the ciphertext body is no better than random.
	if e := medianAbsDiff(rawCombine(f.params, c0, nil, dim, clip), updates[0]); e < garbage*clip {
		t.Fatalf("c0 alone: median error %.3g C", e/clip)
	}
}

func TestCombineRejects(t *testing.T) {
	f := newFixture(t, 3, 2)
	const dim, clip = 9000, 1.0
	updates := [][]float64{make([]float64, dim)}
	sum, _ := encryptAll(t, f, 1, updates, clip).Seal(1)
	other, _ := encryptAll(t, f, 2, updates, clip).Seal(2)
	decs := f.decryptors(t)
	share := func(d *Decryptor, s *Sum, active ...int) [][]byte {
		t.Helper()
		parsed, err := ParseSum(f.params, s.Epoch, s.Round, s.Contributors, s.Ciphertexts)
		if err != nil {
			t.Fatal(err)
		}
		pts := make([]uint64, len(active))
		for i, a := range active {
			pts[i] = f.shares[a].Point
		}
		out, err := d.Share(parsed, pts)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	s01a, s01b := share(decs[0], sum, 0, 1), share(decs[1], sum, 0, 1)
	s12b := share(decs[1], sum, 1, 2)
	s02c := share(decs[2], sum, 0, 2)
	otherB := share(decs[1], other, 0, 1)
	damaged := [][]byte{bytes.Clone(s01b[0]), s01b[1]}
	damaged[0][blobHeaderSize] ^= 0xff
	damaged[0][blobHeaderSize+7] = 0xff

	cases := []struct {
		name   string
		shares [][][]byte
		want   error
	}{
		{"one share", [][][]byte{s01a}, ErrThreshold},
		{"three shares", [][][]byte{s01a, s01b, s02c}, ErrThreshold},
		{"same trustee twice", [][][]byte{s01a, s01a}, ErrThreshold},
		{"shares for different active sets", [][][]byte{s01a, s12b}, ErrBinding},
		{"share of another sum", [][][]byte{s01a, otherB}, ErrBinding},
		{"share missing a ciphertext", [][][]byte{s01a, s01b[:1]}, ErrDimension},
		{"shares out of order", [][][]byte{s01a, {s01b[1], s01b[0]}}, ErrMalformed},
		{"unreduced share", [][][]byte{s01a, damaged}, ErrMalformed},
		{"ciphertext instead of share", [][][]byte{s01a, sum.Ciphertexts}, ErrMalformed},
	}
	for _, c := range cases {
		if _, err := Combine(f.key, sum, c.shares, clip); !isErr(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := Combine(f.key, sum, [][][]byte{s01b, s01a}, clip); err != nil {
		t.Errorf("shares in either order: %v", err)
	}
	if _, err := Combine(f.key, sum, [][][]byte{s01a, s01b}, 0); !isErr(err, ErrRange) {
		t.Errorf("zero clip norm: %v", err)
	}
	// A sum presented under another round or count than it was sealed with.
	if _, err := Combine(f.key, &Sum{Epoch: sum.Epoch, Round: 2, Contributors: 1, Ciphertexts: sum.Ciphertexts}, [][][]byte{s01a, s01b}, clip); !isErr(err, ErrBinding) {
		t.Errorf("relabelled sum: %v, want ErrBinding", err)
	}
}

func TestDecryptorRejects(t *testing.T) {
	f := newFixture(t, 3, 2)
	sum, _ := encryptAll(t, f, 1, [][]float64{make([]float64, 100)}, 1).Seal(1)
	parsed, err := ParseSum(f.params, sum.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
	if err != nil {
		t.Fatal(err)
	}
	d := f.decryptors(t)[0]
	p := func(i int) uint64 { return f.shares[i].Point }
	cases := []struct {
		name   string
		active []uint64
		want   error
	}{
		{"not in the active set", []uint64{p(1), p(2)}, ErrThreshold},
		{"active set too large", []uint64{p(0), p(1), p(2)}, ErrThreshold},
		{"repeated point", []uint64{p(0), p(0)}, ErrThreshold},
		{"unknown point", []uint64{p(0), 99}, ErrThreshold},
	}
	for _, c := range cases {
		if _, err := d.Share(parsed, c.active); !isErr(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	wrongEpoch := *parsed
	wrongEpoch.Epoch++
	if _, err := d.Share(&wrongEpoch, []uint64{p(0), p(1)}); !isErr(err, ErrEpoch) {
		t.Errorf("other epoch: %v, want ErrEpoch", err)
	}
	if _, err := ParseSum(f.params, sum.Epoch, sum.Round, sum.Contributors+1, sum.Ciphertexts); !isErr(err, ErrBinding) {
		t.Errorf("other contributor count: %v, want ErrBinding", err)
	}
	if _, err := ParseSum(f.params, sum.Epoch, sum.Round+1, sum.Contributors, sum.Ciphertexts); !isErr(err, ErrBinding) {
		t.Errorf("other round: %v, want ErrBinding", err)
	}
	if _, err := ParseSum(f.params, sum.Epoch, sum.Round, 0, sum.Ciphertexts); !isErr(err, ErrMalformed) {
		t.Errorf("zero contributors: %v, want ErrMalformed", err)
	}
	if _, err := NewDecryptor(nil); err == nil {
		t.Errorf("NewDecryptor(nil) accepted")
	}
}

// subsets lists the k-element subsets of {0..n-1}.
func subsets(n, k int) [][]int {
	var out [][]int
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		if len(cur) == k {
			out = append(out, slices.Clone(cur))
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(cur, i))
		}
	}
	rec(0, nil)
	return out
}
