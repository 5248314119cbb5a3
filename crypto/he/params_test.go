package he

import (
	"math"
	"math/big"
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
	q := new(big.Int).SetUint64(p.Q())
	if !q.ProbablyPrime(64) {
		t.Errorf("Q = %d is not prime", p.Q())
	}
	if p.Q()%uint64(2*p.N()) != 1 {
		t.Errorf("Q = %d is not 1 mod 2N: no negacyclic NTT", p.Q())
	}
	if bits := q.BitLen(); bits != 60 {
		t.Errorf("Q has %d bits, want 60", bits)
	}
	// The prime is the one lattigo's generator picks, not a hand-typed number.
	gen, _, err := rlwe.GenModuli(logN+1, []int{60}, nil)
	if err != nil || gen[0] != p.Q() {
		t.Errorf("GenModuli gives %v (%v), the constant is %d", gen, err, p.Q())
	}
	if p.rlwe().PCount() != 0 {
		t.Errorf("special modulus present")
	}
	// HE standard, n = 8192: log2(q) <= 218 for 128-bit classical security.
	if bits, logQP := p.SecurityBits(); bits != 128 || logQP > 218 {
		t.Errorf("security %d bits at log2(QP) = %.1f, above the HE standard's 218 for n = 8192", bits, logQP)
	}
	if p.ID() != DefaultParams().ID() || !strings.HasPrefix(p.ID(), "ckks-n8192-q60-coeff-s41-") {
		t.Errorf("ID %q not stable or not as documented", p.ID())
	}
	other, err := newParams(1152921504606748673)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID() == p.ID() {
		t.Errorf("a parameter set with another modulus has the same ID")
	}
	if err := (Params{}).valid(); err == nil {
		t.Errorf("zero Params accepted")
	}
}

func TestOverflowBound(t *testing.T) {
	p := DefaultParams()
	// The largest encodable sum, with room for the noise, must stay below Q/2.
	largest := new(big.Float).SetFloat64(float64(MaxContributors) * MaxAbsUnits * p.scale)
	noise := new(big.Float).SetFloat64(p.ErrorBound(MaxContributors, MaxTrustees, MaxTrustees) * p.scale)
	largest.Add(largest, noise)
	half := new(big.Float).SetUint64(p.Q() / 2)
	if largest.Cmp(half) >= 0 {
		t.Fatalf("largest sum %v reaches Q/2 = %v", largest, half)
	}
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
	pt := ckks.NewPlaintext(p.ckks, 0)
	pt.IsBatched = false
	pt.Scale = rlwe.NewScale(p.scale / clip)
	if err := ecd.Encode(values, pt); err != nil {
		t.Fatal(err)
	}
	p.rlwe().RingQ().INTT(pt.Value, pt.Value)
	pt.IsNTT = false
	for i, v := range values {
		if got, want := encodeCoeff(v*(p.scale/clip), p.q), pt.Value.Coeffs[0][i]; got != want {
			t.Fatalf("coefficient %d of %v: got %d, lattigo %d", i, v, got, want)
		}
	}
	decoded := make([]float64, p.N())
	if err := ecd.Decode(pt, decoded); err != nil {
		t.Fatal(err)
	}
	for i := range values {
		mine := decodeCoeff(pt.Value.Coeffs[0][i], p.q) * clip / p.scale
		if math.Abs(mine-decoded[i]) > 1e-12*clip {
			t.Fatalf("decode %d: mine %v, lattigo %v", i, mine, decoded[i])
		}
	}
}
