package he

import (
	"fmt"
	"testing"
)

// encryptAll encrypts updates as devices "dev-i" of round and adds them to a fresh
// accumulator, returning it unsealed.
func encryptAll(t testing.TB, f *fixture, round uint64, updates [][]float64, clip float64) *Accumulator {
	t.Helper()
	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := NewAccumulator(f.params, f.key.Epoch, len(updates[0]))
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range updates {
		b := UpdateBinding(f.key.Epoch, round, fmt.Sprintf("dev-%d", i), nonce(i))
		cts, err := enc.Encrypt(u, clip, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(cts, b); err != nil {
			t.Fatalf("device %d: %v", i, err)
		}
	}
	return acc
}

func plainSum(updates [][]float64) []float64 {
	out := make([]float64, len(updates[0]))
	for _, u := range updates {
		for i, v := range u {
			out[i] += v
		}
	}
	return out
}

// TestSumPrecision: the decrypted sum equals the plaintext sum within the stated precision
// for 3, 10 and 100 devices with 100,000-parameter updates (13 ciphertexts each).
func TestSumPrecision(t *testing.T) {
	if testing.Short() {
		t.Skip("encrypts 113 updates of 100,000 parameters")
	}
	f := newFixture(t, 3, 2)
	rng := testRNG(t)
	const dim, clip = 100_000, 0.8
	for _, devices := range []int{3, 10, 100} {
		t.Run(fmt.Sprintf("%d-devices", devices), func(t *testing.T) {
			updates := make([][]float64, devices)
			for i := range updates {
				updates[i] = randomUpdate(rng, dim, clip)
				// The device's share of the DP noise, z = 1: N(0, (zC)^2 / devices).
				for j := range updates[i] {
					updates[i][j] += rng.NormFloat64() * clip / float64(devices)
				}
			}
			acc := encryptAll(t, f, 1, updates, clip)
			if acc.Count() != devices {
				t.Fatalf("Count = %d, want %d", acc.Count(), devices)
			}
			sum, err := acc.Seal(1)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.decrypt(t, sum, []int{0, 2}, clip)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != dim {
				t.Fatalf("decrypted %d values, want %d", len(got), dim)
			}
			errMax := maxAbsDiff(got, plainSum(updates))
			bound := f.params.ErrorBound(devices, 3, 2) * clip
			t.Logf("%d devices: max abs error %.3e = %.3e C (bound %.3e C)", devices, errMax, errMax/clip, bound/clip)
			if errMax > bound || errMax > 1e-6*clip {
				t.Errorf("max abs error %.3e above bound %.3e or 1e-6 C", errMax, bound)
			}
		})
	}
}

func TestAccumulatorSealOnce(t *testing.T) {
	f := newFixture(t, 3, 2)
	acc, err := NewAccumulator(f.params, f.key.Epoch, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Seal(4); err == nil {
		t.Fatal("sealed an empty sum")
	}
	acc = encryptAll(t, f, 4, [][]float64{make([]float64, 10)}, 1)
	if _, err := acc.Seal(4); err != nil {
		t.Fatal(err)
	}
	if _, err := acc.Seal(5); err != ErrSealed {
		t.Fatalf("second Seal: %v, want ErrSealed", err)
	}
	enc, _ := NewEncryptor(f.key)
	b := UpdateBinding(f.key.Epoch, 4, "late", nil)
	cts, _ := enc.Encrypt(make([]float64, 10), 1, b)
	if err := acc.Add(cts, b); err != ErrSealed {
		t.Fatalf("Add after Seal: %v, want ErrSealed", err)
	}
	acc.count, acc.sealed = MaxContributors, false
	if err := acc.Add(cts, b); err == nil || !isErr(err, ErrFull) {
		t.Fatalf("Add to a full sum: %v, want ErrFull", err)
	}
}

func TestNewAccumulatorRejects(t *testing.T) {
	p := DefaultParams()
	for _, dim := range []int{0, -1, MaxDimension + 1} {
		if _, err := NewAccumulator(p, 1, dim); !isErr(err, ErrDimension) {
			t.Errorf("dimension %d: %v, want ErrDimension", dim, err)
		}
	}
	if _, err := NewAccumulator(Params{}, 1, 10); !isErr(err, ErrParams) {
		t.Errorf("zero params: %v, want ErrParams", err)
	}
}

// TestAccumulatorPersists: a coordinator that saves its accumulator mid-round and restarts
// resumes with the same sum, count and replay memory.
func TestAccumulatorPersists(t *testing.T) {
	f := newFixture(t, 2, 2)
	rng := testRNG(t)
	const dim, clip = 9000, 1.0
	updates := [][]float64{randomUpdate(rng, dim, clip), randomUpdate(rng, dim, clip)}
	enc, _ := NewEncryptor(f.key)
	acc, _ := NewAccumulator(f.params, f.key.Epoch, dim)
	b0 := UpdateBinding(f.key.Epoch, 1, "dev-0", nil)
	ct0, _ := enc.Encrypt(updates[0], clip, b0)
	if err := acc.Add(ct0, b0); err != nil {
		t.Fatal(err)
	}
	restored := roundTrip(t, "accumulator", acc, (*Accumulator).MarshalBinary, func(b []byte) (*Accumulator, error) { return ParseAccumulator(f.params, b) })
	if restored.Count() != 1 || restored.Dimension() != dim || restored.Epoch() != f.key.Epoch {
		t.Fatalf("restored accumulator: count %d, dim %d, epoch %d", restored.Count(), restored.Dimension(), restored.Epoch())
	}
	if err := restored.Add(ct0, b0); !isErr(err, ErrReplay) {
		t.Fatalf("replay after restore: %v, want ErrReplay", err)
	}
	b1 := UpdateBinding(f.key.Epoch, 1, "dev-1", nil)
	ct1, _ := enc.Encrypt(updates[1], clip, b1)
	if err := restored.Add(ct1, b1); err != nil {
		t.Fatal(err)
	}
	sum, err := restored.Seal(1)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := ParseAccumulator(f.params, must(restored.MarshalBinary())); again.Add(ct1, b1) != ErrSealed {
		t.Fatal("a sealed accumulator came back unsealed")
	}
	got, err := f.decrypt(t, sum, []int{0, 1}, clip)
	if err != nil {
		t.Fatal(err)
	}
	if e := maxAbsDiff(got, plainSum(updates)); e > 1e-6 {
		t.Fatalf("restored sum off by %.3e", e)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestAccumulatorMemoryFlat: adding an update allocates nothing, so the accumulator's memory
// does not grow with the number of devices (the sum and the replay filter are allocated once).
func TestAccumulatorMemoryFlat(t *testing.T) {
	f := newFixture(t, 2, 2)
	enc, _ := NewEncryptor(f.key)
	acc, _ := NewAccumulator(f.params, f.key.Epoch, 9000)
	var cts [][][]byte
	var binds []Binding
	for i := range 3 {
		b := UpdateBinding(f.key.Epoch, 1, fmt.Sprint(i), nil)
		ct, err := enc.Encrypt(make([]float64, 9000), 1, b)
		if err != nil {
			t.Fatal(err)
		}
		cts, binds = append(cts, ct), append(binds, b)
	}
	i := 0
	allocs := testing.AllocsPerRun(2, func() {
		if err := acc.Add(cts[i], binds[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	if allocs != 0 || acc.Count() != 3 {
		t.Fatalf("Add allocated %v times per update (count %d)", allocs, acc.Count())
	}
}

// TestChecker: a checker refuses what a sum's Add refuses, a copy of an update it checked
// included, counts what it takes, returns the fingerprint the sum keys the update on, and has
// no sum to seal, merge or encode.
func TestChecker(t *testing.T) {
	f := newFixture(t, 3, 2)
	const dim = 10
	check, err := NewChecker(f.params, f.key.Epoch, dim)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := NewAccumulator(f.params, f.key.Epoch, dim)
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := NewEncryptor(f.key)
	b := UpdateBinding(f.key.Epoch, 4, "dev-a", nil)
	cts, err := enc.Encrypt(make([]float64, dim), 1, b)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := check.Admit(cts, b)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := sum.Fingerprint(cts, b); fp != want {
		t.Fatal("Admit's fingerprint is not Fingerprint's")
	}
	if check.Count() != 1 {
		t.Fatalf("count %d after one update, want 1", check.Count())
	}
	if _, err := check.Admit(cts, b); !isErr(err, ErrReplay) {
		t.Fatalf("the same update again: %v, want ErrReplay", err)
	}
	other := UpdateBinding(f.key.Epoch, 4, "dev-b", nil)
	if _, err := check.Admit(cts, other); !isErr(err, ErrBinding) {
		t.Fatalf("another device's binding: %v, want ErrBinding", err)
	}
	if _, err := check.Seal(4); !isErr(err, errChecker) {
		t.Fatalf("Seal: %v, want errChecker", err)
	}
	if _, err := check.MarshalBinary(); !isErr(err, errChecker) {
		t.Fatalf("MarshalBinary: %v, want errChecker", err)
	}
	if err := sum.Merge(check); !isErr(err, errChecker) {
		t.Fatalf("Merge of a checker: %v, want errChecker", err)
	}
	if err := check.Merge(sum); !isErr(err, errChecker) {
		t.Fatalf("Merge into a checker: %v, want errChecker", err)
	}
}
