package he

import (
	"math"
	"math/big"
	"math/bits"
	"strings"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
)

func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	if p.N() != 8192 {
		t.Errorf("N = %d, want 8192", p.N())
	}
	for _, q := range p.Moduli() {
		if !new(big.Int).SetUint64(q).ProbablyPrime(64) {
			t.Errorf("modulus %d is not prime", q)
		}
		if q%uint64(2*p.N()) != 1 {
			t.Errorf("modulus %d is not 1 mod 2N: no negacyclic NTT", q)
		}
		if bits.Len64(q) != 60 {
			t.Errorf("modulus %d has %d bits, want 60", q, bits.Len64(q))
		}
	}
	if bits := p.Q().BitLen(); bits != 120 {
		t.Errorf("Q has %d bits, want 120", bits)
	}
	// The primes are the ones lattigo's generator picks, not hand-typed numbers.
	gen, _, err := rlwe.GenModuli(logN+1, []int{60, 60}, nil)
	if err != nil || gen[0] != p.Moduli()[0] || gen[1] != p.Moduli()[1] {
		t.Fatalf("GenModuli gives %v (%v), the constants are %v", gen, err, p.Moduli())
	}
	// The next NTT-friendly prime below q1, for a parameter set that differs in one modulus.
	next := gen[1] - uint64(2*p.N())
	for !new(big.Int).SetUint64(next).ProbablyPrime(64) {
		next -= uint64(2 * p.N())
	}
	gen = append(gen, next)
	if p.rlwe().PCount() != 0 || p.rlwe().QCount() != levels {
		t.Errorf("%d moduli and %d special moduli, want %d and none", p.rlwe().QCount(), p.rlwe().PCount(), levels)
	}
	// HE standard, n = 8192: log2(q) <= 218 for 128-bit classical security.
	if bits, logQP := p.SecurityBits(); bits != 128 || logQP > 218 {
		t.Errorf("security %d bits at log2(QP) = %.1f, above the HE standard's 218 for n = 8192", bits, logQP)
	}
	if p.ID() != DefaultParams().ID() || !strings.HasPrefix(p.ID(), "ckks-n8192-q120-coeff-s100-") {
		t.Errorf("ID %q not stable or not as documented", p.ID())
	}
	for _, qs := range [][2]uint64{{gen[0], gen[2]}, {gen[1], gen[0]}} {
		other, err := newParams(qs[0], qs[1])
		if err != nil {
			t.Fatal(err)
		}
		if other.ID() == p.ID() {
			t.Errorf("parameters with moduli %v have the same ID as the default", qs)
		}
	}
	for _, qs := range [][2]uint64{{gen[0], gen[0]}, {gen[0], 1<<60 + 1}, {gen[0], 1<<59 + 1}} {
		if _, err := newParams(qs[0], qs[1]); err == nil {
			t.Errorf("moduli %v accepted", qs)
		}
	}
	if err := (Params{}).valid(); err == nil {
		t.Errorf("zero Params accepted")
	}
}

// TestFloodingBound checks the statistical-distance claim of the package documentation: the
// flooding noise of one trustee, uniform on M = 2^76 - 1 integers, hides any encryption noise
// of absolute value at most B (encryptionNoiseBound) to statistical distance B/M <= 2^-40 per
// coefficient, and B bounds the worst case the limits allow.
func TestFloodingBound(t *testing.T) {
	p := DefaultParams()
	b := p.encryptionNoiseBound()
	// 19 n N twice (u e_pk and e1 s) plus 19 (e0), per update, for the largest sum.
	want := uint64(MaxContributors) * (2*19*MaxTrustees*uint64(p.N()) + 19)
	if b != want {
		t.Errorf("B = %d, want %d", b, want)
	}
	m := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), floodLogWidth), big.NewInt(1))
	lhs := new(big.Int).Lsh(new(big.Int).SetUint64(b), 40) // B 2^40 <= M  <=>  B/M <= 2^-40
	if lhs.Cmp(m) > 0 {
		t.Errorf("B = %d = 2^%.2f: B/M = 2^%.2f, above 2^-40", b, math.Log2(float64(b)), math.Log2(float64(b))-floodLogWidth)
	}
	t.Logf("B = %d = 2^%.2f, M = 2^76 - 1, distance per coefficient <= 2^%.2f", b, math.Log2(float64(b)), math.Log2(float64(b))-floodLogWidth)
}

// TestOverflowBound: the largest sum the limits allow, plus the largest noise it can carry
// (B, and the flooding noise of MaxTrustees trustees, at most 2^75 - 1 each, plus lattigo's
// own key-switch error, at most 19 each), stays below (Q-1)/2, so it always decodes without
// wrapping.
func TestOverflowBound(t *testing.T) {
	p := DefaultParams()
	big2 := func(e uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), e) }
	largest := new(big.Int).Mul(big.NewInt(MaxContributors*MaxAbsUnits), big2(logScale))
	largest.Add(largest, new(big.Int).SetUint64(p.encryptionNoiseBound()))
	flood := new(big.Int).Add(big2(floodLogWidth-1), big.NewInt(-1+19)) // flooding + key-switch error
	largest.Add(largest, flood.Mul(flood, big.NewInt(MaxTrustees)))
	half := new(big.Int).Rsh(p.Q(), 1)
	if largest.Cmp(half) >= 0 {
		t.Fatalf("largest sum 2^%d reaches (Q-1)/2", largest.BitLen())
	}
	t.Logf("largest |sum + noise| < 2^%d, (Q-1)/2 >= 2^%d", largest.BitLen(), half.BitLen()-1)
}

func TestErrorBoundWithinTarget(t *testing.T) {
	p := DefaultParams()
	for _, c := range []struct{ k, n, t int }{
		{MaxContributors, MaxTrustees, MaxTrustees},
		{100, 3, 2},
		{3, 2, 2},
	} {
		b := p.ErrorBound(c.k, c.n, c.t)
		t.Logf("ErrorBound(%d updates, %d trustees, t=%d) = %.2e C", c.k, c.n, c.t, b)
		if b > 1e-6 {
			t.Errorf("ErrorBound(%d, %d, %d) = %.2e, above the 1e-6 C target", c.k, c.n, c.t, b)
		}
	}
}

// TestEncodingMatchesCKKS checks the package's coefficient encoding against lattigo's CKKS
// encoder in coefficient mode (IsBatched = false) at the same scale: the same integers, and the
// same decoded values.
func TestEncodingMatchesCKKS(t *testing.T) {
	p := DefaultParams()
	rng := testRNG(t)
	clip := 0.37
	values := make([]float64, p.N())
	for i := range values {
		values[i] = (rng.Float64()*2 - 1) * MaxAbsUnits * clip
	}
	values[0], values[1] = MaxAbsUnits*clip, -MaxAbsUnits*clip

	ecd := ckks.NewEncoder(p.ckks)
	pt := ckks.NewPlaintext(p.ckks, p.ckks.MaxLevel())
	pt.IsBatched = false
	pt.Scale = rlwe.NewScale(p.scale / clip)
	if err := ecd.Encode(values, pt); err != nil {
		t.Fatal(err)
	}
	p.rlwe().RingQ().INTT(pt.Value, pt.Value)
	pt.IsNTT = false
	for i, v := range values {
		got0, got1 := p.encodeCoeff(v * (p.scale / clip))
		if want0, want1 := pt.Value.Coeffs[0][i], pt.Value.Coeffs[1][i]; got0 != want0 || got1 != want1 {
			t.Fatalf("coefficient %d of %v: got (%d, %d), lattigo (%d, %d)", i, v, got0, got1, want0, want1)
		}
	}
	decoded := make([]float64, p.N())
	if err := ecd.Decode(pt, decoded); err != nil {
		t.Fatal(err)
	}
	for i := range values {
		mine := p.decodeCoeff(pt.Value.Coeffs[0][i], pt.Value.Coeffs[1][i]) * clip / p.scale
		if math.Abs(mine-decoded[i]) > 1e-12*clip {
			t.Fatalf("decode %d: mine %v, lattigo %v", i, mine, decoded[i])
		}
	}
}
