package he

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
)

// The one parameter set Vigil uses. See the package documentation for the security estimate
// and the precision bound.
const (
	// logN is log2 of the ring degree N = 8192: each ciphertext packs N parameters.
	logN = 13
	// defaultQ is the single 60-bit NTT-friendly prime modulus (q = 1 mod 2N), the first one
	// below 2^60 that lattigo's generator finds for 2N = 16384. There is no special modulus P:
	// nothing is key-switched homomorphically, so log2(QP) = log2(Q) = 60.
	defaultQ = 1152921504606830593
	// logScale is log2 of the fixed-point scale per clip norm: a value v is encoded as the
	// integer round(v / C * 2^41).
	logScale = 41
	// errorSigma and errorBound are the RLWE error distribution (the HE standard's 3.2, cut at
	// six standard deviations), lattigo's default.
	errorSigma = rlwe.DefaultNoise
	errorBound = rlwe.DefaultNoiseBound
	// smudgingSigma is the standard deviation of the noise each trustee adds to its decryption
	// share (noise flooding); see the package documentation for why 2^15.
	smudgingSigma = 1 << 15
	// tailSigmas is the number of standard deviations the precision bound allows: a centred
	// Gaussian exceeds 7 sigma with probability 2.6e-12, so the bound holds for every
	// coefficient of a MaxDimension sum except with probability below 3e-6.
	tailSigmas = 7
)

// Params is an immutable, validated CKKS parameter set with the packing rules on top of it.
// Every ciphertext, share and key carries the digest of the canonical description of its
// Params; decoders refuse any other. The zero Params is not usable: use DefaultParams.
type Params struct {
	ckks     ckks.Parameters
	q        uint64
	scale    float64
	smudging ring.DiscreteGaussian
	digest   [16]byte
	id       string
}

// DefaultParams returns Vigil's parameter set: CKKS over Z_Q[X]/(X^8192+1) with one 60-bit
// modulus, coefficient encoding at scale 2^41 per clip norm, and flooding noise 2^15 on
// decryption shares. It panics only if the package's own constants were invalid, which the
// tests rule out.
func DefaultParams() Params {
	p, err := newParams(defaultQ)
	if err != nil {
		panic(fmt.Sprintf("he: invalid built-in parameters: %v", err))
	}
	return p
}

// newParams builds the parameter set around modulus q; tests use it to make parameter sets
// that differ from the default.
func newParams(q uint64) (Params, error) {
	lit := ckks.ParametersLiteral{
		LogN:            logN,
		Q:               []uint64{q},
		Xe:              ring.DiscreteGaussian{Sigma: errorSigma, Bound: errorBound},
		Xs:              ring.Ternary{P: 2.0 / 3},
		RingType:        ring.Standard,
		LogDefaultScale: logScale,
	}
	cp, err := ckks.NewParametersFromLiteral(lit)
	if err != nil {
		return Params{}, fmt.Errorf("he: parameters: %w", err)
	}
	p := Params{
		ckks:     cp,
		q:        q,
		scale:    math.Exp2(logScale),
		smudging: ring.DiscreteGaussian{Sigma: smudgingSigma, Bound: 6 * smudgingSigma},
	}
	canon := p.canonical()
	sum := sha256.Sum256([]byte(canon))
	copy(p.digest[:], sum[:16])
	p.id = fmt.Sprintf("ckks-n%d-q%d-coeff-s%d-%s", cp.N(), bits.Len64(q), logScale, hex.EncodeToString(p.digest[:8]))
	return p, nil
}

// canonical is the text the parameter digest is computed over. It names everything that
// changes what a ciphertext means: the ring, the distributions, the encoding and the limits
// that the precision and overflow bounds rest on.
func (p Params) canonical() string {
	return fmt.Sprintf("vigil/he/params/v1\nscheme=ckks\nencoding=coefficient\nlogN=%d\nq=%d\np=\n"+
		"xs=ternary(2/3)\nxe=gaussian(sigma=%g,bound=%g)\nlogScale=%d\nsmudging=gaussian(sigma=%d,bound=%d)\n"+
		"maxAbsUnits=%d\nmaxContributors=%d\nmaxDimension=%d\n",
		logN, p.q, errorSigma, errorBound, logScale, smudgingSigma, 6*smudgingSigma,
		MaxAbsUnits, MaxContributors, MaxDimension)
}

// ID names the parameter set: a readable prefix and the first 8 bytes of the digest of its
// canonical description. It is what the API's params_id fields carry.
func (p Params) ID() string { return p.id }

// N is the ring degree: the number of parameters one ciphertext packs.
func (p Params) N() int { return p.ckks.N() }

// Q is the ciphertext modulus.
func (p Params) Q() uint64 { return p.q }

// Ciphertexts returns how many ciphertexts an update of dim parameters takes.
func (p Params) Ciphertexts(dim int) int { return (dim + p.N() - 1) / p.N() }

// UpdateBytes returns the serialised size of an encrypted update of dim parameters.
func (p Params) UpdateBytes(dim int) int { return p.Ciphertexts(dim) * blobSize(p, 2) }

// SecurityBits returns the classical security level claimed for the parameter set and the
// total modulus size it is read from; see the package documentation for the source.
func (p Params) SecurityBits() (bits int, logQP float64) { return 128, p.ckks.LogQP() }

// ErrorBound returns the bound on the absolute error of a decrypted sum, in units of the clip
// norm, for a sum of contributors updates under a key shared among trustees and decrypted by
// threshold of them. It is tailSigmas standard deviations of the total noise:
//
//	per update:  rounding 1/12 + sigma^2 (1 + 4 n N / 3)   (u e_pk + e0 + e1 s, s = sum of n ternary keys)
//	per trustee: smudging^2 + sigma^2
//
// divided by the scale 2^41. The tests check both that measured errors stay inside it and that
// it is below 1e-6 for every size the limits allow.
func (p Params) ErrorBound(contributors, trustees, threshold int) float64 {
	n := float64(p.N())
	s2 := errorSigma * errorSigma
	perUpdate := 1.0/12 + s2*(1+4*float64(trustees)*n/3)
	perTrustee := float64(smudgingSigma)*float64(smudgingSigma) + s2
	variance := float64(contributors)*perUpdate + float64(threshold)*perTrustee
	return tailSigmas * math.Sqrt(variance) / p.scale
}

func (p Params) rlwe() rlwe.Parameters { return p.ckks.Parameters }

// valid reports whether p was built by DefaultParams rather than being the zero value.
func (p Params) valid() error {
	if p.q == 0 {
		return fmt.Errorf("%w: zero Params; use DefaultParams", ErrParams)
	}
	return nil
}
