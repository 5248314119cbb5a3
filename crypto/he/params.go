package he

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/schemes/ckks"
)

// The one parameter set Vigil uses. See the package documentation for the arithmetic behind
// each number: the security estimate, the flooding bound, the overflow and precision bounds.
const (
	// logN is log2 of the ring degree N = 8192: each ciphertext packs N parameters.
	logN = 13
	// defaultQ0 and defaultQ1 are the two 60-bit NTT-friendly primes (q = 1 mod 2N) whose
	// product is the ciphertext modulus Q (120 bits): the first two below 2^60 that lattigo's
	// generator finds for 2N = 16384. There is no special modulus P: nothing is key-switched
	// homomorphically, so log2(QP) = log2(Q) = 120.
	defaultQ0 = 1152921504606830593
	defaultQ1 = 1152921504606748673
	// logScale is log2 of the fixed-point scale per clip norm: a value v is encoded as the
	// integer round(v / C * 2^100).
	logScale = 100
	// errorSigma and errorBound are the RLWE error distribution (the HE standard's 3.2, cut at
	// six standard deviations), lattigo's default. Its samples are integers of absolute value
	// at most floor(19.2) = 19, which the flooding bound relies on.
	errorSigma = rlwe.DefaultNoise
	errorBound = rlwe.DefaultNoiseBound
	// floodLogWidth is log2 of the width of the flooding noise each trustee adds to every
	// coefficient of its decryption share: uniform on the 2^76 - 1 integers of
	// [-(2^75 - 1), 2^75 - 1] (see flooding.go and the package documentation).
	floodLogWidth = 76
	// tailSigmas is the number of standard deviations the precision bound allows: a centred
	// Gaussian exceeds 7 sigma with probability 2.6e-12, so the bound holds for every
	// coefficient of a MaxDimension sum except with probability below 3e-6.
	tailSigmas = 7
)

// levels is the number of RNS primes of Q. The CRT decoding (rns.go) is written for exactly
// two.
const levels = 2

// Params is an immutable, validated CKKS parameter set with the packing rules on top of it.
// Every ciphertext, share and key carries the digest of the canonical description of its
// Params; decoders refuse any other. The zero Params is not usable: use DefaultParams.
type Params struct {
	ckks   ckks.Parameters
	q      [levels]uint64 // the RNS primes, q[0] * q[1] = Q
	crt    crtConsts
	scale  float64
	digest [16]byte
	id     string
}

// DefaultParams returns Vigil's parameter set: CKKS over Z_Q[X]/(X^8192+1) with Q the
// product of two 60-bit primes, coefficient encoding at scale 2^100 per clip norm, and
// uniform flooding noise of width 2^76 on decryption shares. It panics only if the package's
// own constants were invalid, which the tests rule out.
func DefaultParams() Params {
	p, err := newParams(defaultQ0, defaultQ1)
	if err != nil {
		panic(fmt.Sprintf("he: invalid built-in parameters: %v", err))
	}
	return p
}

// newParams builds the parameter set around the primes q0 and q1; tests use it to make
// parameter sets that differ from the default.
func newParams(q0, q1 uint64) (Params, error) {
	lit := ckks.ParametersLiteral{
		LogN:            logN,
		Q:               []uint64{q0, q1},
		Xe:              ring.DiscreteGaussian{Sigma: errorSigma, Bound: errorBound},
		Xs:              ring.Ternary{P: 2.0 / 3},
		RingType:        ring.Standard,
		LogDefaultScale: logScale,
	}
	cp, err := ckks.NewParametersFromLiteral(lit)
	if err != nil {
		return Params{}, fmt.Errorf("he: parameters: %w", err)
	}
	// The overflow argument and the flooding sampler need every prime just below 2^60, and
	// the CRT needs them distinct.
	for _, q := range []uint64{q0, q1} {
		if q >= 1<<60 || 1<<60-q > maxDelta {
			return Params{}, fmt.Errorf("he: parameters: modulus %d is not within 2^43 below 2^60", q)
		}
	}
	if q0 == q1 {
		return Params{}, fmt.Errorf("he: parameters: the two moduli are equal")
	}
	p := Params{
		ckks:  cp,
		q:     [levels]uint64{q0, q1},
		crt:   newCRT(q0, q1),
		scale: math.Exp2(logScale),
	}
	canon := p.canonical()
	sum := sha256.Sum256([]byte(canon))
	copy(p.digest[:], sum[:16])
	p.id = fmt.Sprintf("ckks-n%d-q%d-coeff-s%d-%s", cp.N(), p.Q().BitLen(), logScale, hex.EncodeToString(p.digest[:8]))
	return p, nil
}

// canonical is the text the parameter digest is computed over. It names everything that
// changes what a ciphertext means: the ring, the RNS basis and its order (it is the layout of
// every serialised polynomial), the distributions, the encoding and the limits that the
// precision, overflow and flooding bounds rest on.
func (p Params) canonical() string {
	return fmt.Sprintf("vigil/he/params/v2\nscheme=ckks\nencoding=coefficient\nlogN=%d\nq=%d,%d\np=\n"+
		"xs=ternary(2/3)\nxe=gaussian(sigma=%g,bound=%g)\nlogScale=%d\n"+
		"flooding=uniform(-(2^%d-1),2^%d-1)\nmaxAbsUnits=%d\nmaxContributors=%d\nmaxDimension=%d\n",
		logN, p.q[0], p.q[1], errorSigma, errorBound, logScale, floodLogWidth-1, floodLogWidth-1,
		MaxAbsUnits, MaxContributors, MaxDimension)
}

// ID names the parameter set: a readable prefix and the first 8 bytes of the digest of its
// canonical description. It is what the API's params_id fields carry.
func (p Params) ID() string { return p.id }

// N is the ring degree: the number of parameters one ciphertext packs.
func (p Params) N() int { return p.ckks.N() }

// Q returns the ciphertext modulus, the product of the RNS primes (Moduli).
func (p Params) Q() *big.Int {
	return new(big.Int).Mul(new(big.Int).SetUint64(p.q[0]), new(big.Int).SetUint64(p.q[1]))
}

// Moduli returns the RNS primes of Q, in the order every serialised polynomial stores its
// residues.
func (p Params) Moduli() []uint64 { return p.q[:] }

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
//	per trustee: (M^2 - 1) / 12 + sigma^2                  (uniform flooding over M = 2^76 - 1 integers, lattigo's key-switch noise)
//
// divided by the scale 2^100. The flooding term dominates. The tests check both that measured
// errors stay inside it and that it is below 1e-6 for every size the limits allow.
func (p Params) ErrorBound(contributors, trustees, threshold int) float64 {
	n := float64(p.N())
	s2 := errorSigma * errorSigma
	perUpdate := 1.0/12 + s2*(1+4*float64(trustees)*n/3)
	m := math.Exp2(floodLogWidth) // M + 1; the difference is far below float64 precision here
	perTrustee := m*m/12 + s2
	variance := float64(contributors)*perUpdate + float64(threshold)*perTrustee
	return tailSigmas * math.Sqrt(variance) / p.scale
}

// encryptionNoiseBound returns B, the largest absolute value any coefficient of the
// encryption noise of a sum can take, whatever the randomness: for each of at most
// MaxContributors updates, |u e_pk| + |e1 s| + |e0| <= 19 n N + 19 n N + 19, with u ternary,
// e_pk the sum of n error polynomials, s the sum of n ternary secrets, every error coefficient
// at most 19 in absolute value, and n = MaxTrustees. The flooding noise is sized against it.
func (p Params) encryptionNoiseBound() uint64 {
	const e = 19 // floor(errorBound): lattigo rounds samples of absolute value <= 19.2
	return MaxContributors * (2*e*MaxTrustees*uint64(p.N()) + e)
}

func (p Params) rlwe() rlwe.Parameters { return p.ckks.Parameters }

// valid reports whether p was built by DefaultParams rather than being the zero value.
func (p Params) valid() error {
	if p.q[0] == 0 {
		return fmt.Errorf("%w: zero Params; use DefaultParams", ErrParams)
	}
	return nil
}
