package he

import (
	"fmt"
	"testing"
)

// Benchmarks for the targets of issue 6, at 100,000 parameters (13 ciphertexts). Run with
//
//	go test ./crypto/he -run '^$' -bench . -benchmem
const benchDim = 100_000

func benchUpdates(b *testing.B, f *fixture, count int) ([][][]byte, []Binding) {
	b.Helper()
	enc, err := NewEncryptor(f.key)
	if err != nil {
		b.Fatal(err)
	}
	rng := testRNG(b)
	var cts [][][]byte
	var binds []Binding
	for i := range count {
		bind := UpdateBinding(f.key.Epoch, 1, fmt.Sprintf("dev-%d", i), nonce(i))
		ct, err := enc.Encrypt(randomUpdate(rng, benchDim, 1), 1, bind)
		if err != nil {
			b.Fatal(err)
		}
		cts, binds = append(cts, ct), append(binds, bind)
	}
	return cts, binds
}

// BenchmarkEncrypt100k: the device's encode + encrypt + serialise of one update.
func BenchmarkEncrypt100k(b *testing.B) {
	f := newFixture(b, 3, 2)
	enc, err := NewEncryptor(f.key)
	if err != nil {
		b.Fatal(err)
	}
	update := randomUpdate(testRNG(b), benchDim, 1)
	bind := UpdateBinding(f.key.Epoch, 1, "dev", nil)
	var size int
	b.ResetTimer()
	for b.Loop() {
		cts, err := enc.Encrypt(update, 1, bind)
		if err != nil {
			b.Fatal(err)
		}
		size = 0
		for _, c := range cts {
			size += len(c)
		}
	}
	b.ReportMetric(float64(size), "upload-bytes")
	b.ReportMetric(float64(size)/float64(4*benchDim), "x-float32")
}

// BenchmarkAccumulatorAdd100k: the coordinator's deserialise + validate + add of one update.
// A pool of distinct updates is cycled; between cycles the replay set is emptied (that
// bookkeeping is in the timed loop: a 128 KiB clear per 8 updates). B/op shows that memory per
// added update does not grow with the number of updates.
func BenchmarkAccumulatorAdd100k(b *testing.B) {
	f := newFixture(b, 3, 2)
	const pool = 8
	cts, binds := benchUpdates(b, f, pool)
	acc, err := NewAccumulator(f.params, f.key.Epoch, benchDim)
	if err != nil {
		b.Fatal(err)
	}
	i := 0
	b.SetBytes(int64(f.params.UpdateBytes(benchDim)))
	b.ResetTimer()
	for b.Loop() {
		if i == pool {
			i = 0
			acc.seen.reset()
			acc.count = 0
		}
		if err := acc.Add(cts[i], binds[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkDecryptionShare100k: one trustee's work per round: check the sum, then compute
// its decryption share of all 13 ciphertexts. (Benchmarks repeat it on one sum; the trustee
// service never does.)
func BenchmarkDecryptionShare100k(b *testing.B) {
	f := newFixture(b, 3, 2)
	cts, binds := benchUpdates(b, f, 1)
	acc, _ := NewAccumulator(f.params, f.key.Epoch, benchDim)
	if err := acc.Add(cts[0], binds[0]); err != nil {
		b.Fatal(err)
	}
	sum, _ := acc.Seal(1)
	d, err := NewDecryptor(f.shares[0])
	if err != nil {
		b.Fatal(err)
	}
	active := []uint64{f.shares[0].Point, f.shares[1].Point}
	b.ResetTimer()
	for b.Loop() {
		parsed, err := ParseSum(f.params, sum.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Share(parsed, active); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCombine100k: the coordinator's combine of t = 2 shares and decode.
func BenchmarkCombine100k(b *testing.B) {
	f := newFixture(b, 3, 2)
	cts, binds := benchUpdates(b, f, 1)
	acc, _ := NewAccumulator(f.params, f.key.Epoch, benchDim)
	if err := acc.Add(cts[0], binds[0]); err != nil {
		b.Fatal(err)
	}
	sum, _ := acc.Seal(1)
	parsed, _ := ParseSum(f.params, sum.Epoch, sum.Round, sum.Contributors, sum.Ciphertexts)
	active := []uint64{f.shares[0].Point, f.shares[1].Point}
	var shares [][][]byte
	for _, d := range f.decryptors(b)[:2] {
		s, err := d.Share(parsed, active)
		if err != nil {
			b.Fatal(err)
		}
		shares = append(shares, s)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := Combine(f.key, sum, shares, 1); err != nil {
			b.Fatal(err)
		}
	}
}
