package he

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"math"
	mrand "math/rand/v2"
	"testing"
)

// roundTrip is the one test helper every serialisable type goes through: marshal, parse,
// marshal again, and require the two encodings to be byte-identical (canonical encoding), and
// every strict prefix of the encoding to be refused.
func roundTrip[T any](t *testing.T, name string, v T, marshal func(T) ([]byte, error), parse func([]byte) (T, error)) T {
	t.Helper()
	b1, err := marshal(v)
	if err != nil {
		t.Fatalf("%s: marshal: %v", name, err)
	}
	v2, err := parse(b1)
	if err != nil {
		t.Fatalf("%s: parse: %v", name, err)
	}
	b2, err := marshal(v2)
	if err != nil {
		t.Fatalf("%s: marshal after parse: %v", name, err)
	}
	if !bytes.Equal(b1, b2) {
		t.Fatalf("%s: encoding is not canonical: %d bytes, then %d bytes", name, len(b1), len(b2))
	}
	for _, cut := range []int{0, 1, len(b1) / 2, len(b1) - 1} {
		if _, err := parse(b1[:cut]); err == nil {
			t.Fatalf("%s: parse accepted the first %d of %d bytes", name, cut, len(b1))
		}
	}
	if _, err := parse(append(bytes.Clone(b1), 0)); err == nil {
		t.Fatalf("%s: parse accepted a trailing byte", name)
	}
	return v2
}

// fixture is a key epoch with its trustees' shares, made by the local ceremony.
type fixture struct {
	params Params
	key    *KeyEpoch
	shares []*SecretShare
}

func newFixture(t testing.TB, n, threshold int) *fixture {
	t.Helper()
	p := DefaultParams()
	ids := []string{"privacy-office", "security", "audit", "legal", "board", "ombud"}[:n]
	shares, key, err := LocalCeremony(p, 7, ids, threshold)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{params: p, key: key, shares: shares}
}

// decryptors returns a Decryptor for each trustee.
func (f *fixture) decryptors(t testing.TB) []*Decryptor {
	t.Helper()
	out := make([]*Decryptor, len(f.shares))
	for i, s := range f.shares {
		d, err := NewDecryptor(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = d
	}
	return out
}

// decrypt runs the trustees at the given indices on sum and combines their shares.
func (f *fixture) decrypt(t testing.TB, sum *Sum, which []int, clip float64) ([]float64, error) {
	t.Helper()
	decs := f.decryptors(t)
	active := make([]uint64, len(which))
	for i, w := range which {
		active[i] = f.shares[w].Point
	}
	parsed, err := ParseSum(f.params, sum.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
	if err != nil {
		return nil, err
	}
	var shares [][][]byte
	for _, w := range which {
		s, err := decs[w].Share(parsed, active)
		if err != nil {
			return nil, err
		}
		shares = append(shares, s)
	}
	return Combine(f.key, sum, shares, clip)
}

// randomUpdate returns a vector of dim values with L2 norm exactly clip (a clipped update).
func randomUpdate(rng *mrand.Rand, dim int, clip float64) []float64 {
	v := make([]float64, dim)
	var norm float64
	for i := range v {
		v[i] = rng.NormFloat64()
		norm += v[i] * v[i]
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] *= clip / norm
	}
	return v
}

func testRNG(t testing.TB) *mrand.Rand {
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		t.Fatal(err)
	}
	t.Logf("rng seed %x", seed)
	return mrand.New(mrand.NewChaCha8(seed))
}

func nonce(i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(i)) }

func maxAbsDiff(a, b []float64) float64 {
	var m float64
	for i := range a {
		m = max(m, math.Abs(a[i]-b[i]))
	}
	return m
}

func isErr(err, target error) bool { return errors.Is(err, target) }
