package he

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
)

// TestAccumulatorRejects: a ciphertext under other parameters, of the wrong size, replayed
// from an earlier round or from another device (and every other malformation the decoder
// knows) is rejected with a clear error and leaves the running sum as it was.
func TestAccumulatorRejects(t *testing.T) {
	f := newFixture(t, 3, 2)
	rng := testRNG(t)
	const dim, clip, round, epoch = 10_000, 1.0, 9, 7
	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := NewAccumulator(f.params, epoch, dim)
	if err != nil {
		t.Fatal(err)
	}
	bindA := UpdateBinding(epoch, round, "dev-a", nonce(1))
	bindB := UpdateBinding(epoch, round, "dev-b", nonce(2))
	uA, uB := randomUpdate(rng, dim, clip), randomUpdate(rng, dim, clip)
	ctA, err := enc.Encrypt(uA, clip, bindA)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.Add(ctA, bindA); err != nil {
		t.Fatal(err)
	}

	// Material for the bad inputs. ctB is device B's valid update; mutations of it are wrong
	// in exactly one way.
	ctB, _ := enc.Encrypt(uB, clip, bindB)
	earlier := UpdateBinding(epoch, round-1, "dev-b", nonce(2))
	ctEarlier, _ := enc.Encrypt(uB, clip, earlier)
	otherParams, err := newParams(defaultQ1, defaultQ0) // the same primes in the other order
	if err != nil {
		t.Fatal(err)
	}
	_, otherKey, err := LocalCeremony(otherParams, epoch, []string{"x", "y"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	otherEnc, _ := NewEncryptor(otherKey)
	ctOther, _ := otherEnc.Encrypt(uB, clip, bindB)
	ctSmall, _ := enc.Encrypt(uB[:dim/2], clip, bindB)
	sumOnly := encryptAll(t, f, round, [][]float64{uB}, clip)
	sealed, _ := sumOnly.Seal(round)

	mutate := func(cts [][]byte, j int, fn func(b []byte) []byte) [][]byte {
		out := make([][]byte, len(cts))
		for i := range cts {
			out[i] = bytes.Clone(cts[i])
		}
		out[j] = fn(out[j])
		return out
	}
	rebind := func(b []byte) []byte { copy(b[32:64], bindB[:]); return b }

	cases := []struct {
		name string
		cts  [][]byte
		want error
	}{
		{"other parameters", ctOther, ErrParams},
		{"truncated ciphertext", mutate(ctB, 1, func(b []byte) []byte { return b[:len(b)-8] }), ErrMalformed},
		{"ciphertext with a trailing byte", mutate(ctB, 0, func(b []byte) []byte { return append(b, 0) }), ErrMalformed},
		{"header only", mutate(ctB, 0, func(b []byte) []byte { return b[:blobHeaderSize] }), ErrMalformed},
		{"empty ciphertext", mutate(ctB, 0, func([]byte) []byte { return nil }), ErrMalformed},
		{"one ciphertext missing", ctB[:1], ErrDimension},
		{"update of another dimension", ctSmall, ErrDimension},
		{"replayed from an earlier round", ctEarlier, ErrBinding},
		{"another device's update", ctA, ErrBinding},
		{"verbatim body under a forged binding", mutate(mutate(ctA, 0, rebind), 1, rebind), ErrReplay},
		{"another key epoch", mutate(ctB, 0, func(b []byte) []byte { binary.LittleEndian.PutUint64(b[24:], epoch+1); return b }), ErrEpoch},
		{"ciphertexts out of order", [][]byte{ctB[1], ctB[0]}, ErrMalformed},
		{"a sum where an update belongs", sealed.Ciphertexts, ErrMalformed},
		{"unreduced residue modulo q0", mutate(ctB, 1, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[blobHeaderSize+800:], f.params.Moduli()[0])
			return b
		}), ErrMalformed},
		// q1 < q0: a residue that would be reduced modulo q0 but is not modulo q1.
		{"unreduced residue modulo q1", mutate(ctB, 1, func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[blobHeaderSize+8*f.params.N()+800:], f.params.Moduli()[1])
			return b
		}), ErrMalformed},
		{"bad magic", mutate(ctB, 0, func(b []byte) []byte { b[0] = 'X'; return b }), ErrMalformed},
		{"unknown version", mutate(ctB, 0, func(b []byte) []byte { b[4] = 2; return b }), ErrMalformed},
		{"level 0", mutate(ctB, 0, func(b []byte) []byte { b[7] = 0; return b }), ErrMalformed},
		{"level 2", mutate(ctB, 0, func(b []byte) []byte { b[7] = 2; return b }), ErrMalformed},
		{"degree 2", mutate(ctB, 0, func(b []byte) []byte { b[6] = 2; return b }), ErrMalformed},
	}
	for _, c := range cases {
		err := acc.Add(c.cts, bindB)
		if !isErr(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
	if acc.Count() != 1 {
		t.Fatalf("Count = %d after rejections, want 1", acc.Count())
	}

	if err := acc.Add(ctB, bindB); err != nil {
		t.Fatal(err)
	}
	sum, err := acc.Seal(round)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.decrypt(t, sum, []int{0, 1}, clip)
	if err != nil {
		t.Fatal(err)
	}
	if e := maxAbsDiff(got, plainSum([][]float64{uA, uB})); e > 1e-6*clip {
		t.Fatalf("sum disturbed by rejected inputs: max error %.3e", e)
	}
}

func TestEncryptRejects(t *testing.T) {
	f := newFixture(t, 2, 2)
	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	var b Binding
	cases := []struct {
		name   string
		update []float64
		clip   float64
		want   error
	}{
		{"empty", nil, 1, ErrDimension},
		{"too long", make([]float64, MaxDimension+1), 1, ErrDimension},
		{"NaN", []float64{0, math.NaN()}, 1, ErrRange},
		{"+Inf", []float64{math.Inf(1)}, 1, ErrRange},
		{"beyond 16 clip norms", []float64{16.01}, 1, ErrRange},
		{"zero clip norm", []float64{0}, 0, ErrRange},
		{"negative clip norm", []float64{0}, -1, ErrRange},
		{"infinite clip norm", []float64{0}, math.Inf(1), ErrRange},
	}
	for _, c := range cases {
		if _, err := enc.Encrypt(c.update, c.clip, b); !isErr(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := enc.Encrypt([]float64{16, -16}, 1, b); err != nil {
		t.Errorf("values at the limit: %v", err)
	}
	if _, err := NewEncryptor(nil); err == nil {
		t.Errorf("NewEncryptor(nil) accepted")
	}
	if _, err := NewEncryptor(&KeyEpoch{}); err == nil {
		t.Errorf("NewEncryptor(zero key) accepted")
	}
}
