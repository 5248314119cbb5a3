package he

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"fmt"
	"math"

	"github.com/tuneinsight/lattigo/v5/ring"
)

// Encryptor encrypts a device's update under the collective public key of one key epoch. It
// packs the update across as many ciphertexts as it needs, N parameters per ciphertext, in
// coefficient encoding: parameter j*N+i is coefficient i of ciphertext j's plaintext m, as the
// fixed-point integer round(v / C * 2^100) for clip norm C, held modulo Q = q0 q1 as its two
// residues (RNS).
//
// Encryption is RLWE public-key encryption with the collective key (b, a), computed with
// lattigo's ring arithmetic and samplers exactly as lattigo's rlwe.Encryptor does without a
// special modulus: c = (u b + e0 + m, u a + e1) with u uniform ternary and e0, e1 discrete
// Gaussian (sigma 3.2), in the coefficient domain, modulo both primes. The one difference is the randomness:
// lattigo's Encryptor draws it from a BLAKE2b XOF keyed once from crypto/rand; this one draws
// it from an AES-256-CTR keystream under a fresh key from crypto/rand for every Encrypt call
// (a CTR DRBG). Sampling dominates encryption, and this source makes it markedly faster than
// the XOF (reading crypto/rand for every 1 KiB buffer is slower still).
// TestEncryptorMatchesLattigo checks the two encryptors against each other.
//
// An Encryptor holds buffers and is not safe for concurrent use; make one per goroutine.
type Encryptor struct {
	params       Params
	epoch        uint64
	pkB, pkA     ring.Poly // the public key, NTT and Montgomery form
	rng          *ctrDRBG
	xs, xe       ring.Sampler
	u, m, c0, c1 ring.Poly
}

// NewEncryptor returns an Encryptor for key. The caller must have verified key's signature
// under the root of trust (devices refuse keys that are not signed).
func NewEncryptor(key *KeyEpoch) (*Encryptor, error) {
	if key == nil {
		return nil, fmt.Errorf("he: NewEncryptor: nil key epoch")
	}
	if err := key.check(); err != nil {
		return nil, err
	}
	p := key.params
	rp := p.rlwe()
	ringQ := rp.RingQ()
	rng := &ctrDRBG{}
	xs, err := ring.NewSampler(rng, ringQ, rp.Xs(), false)
	if err != nil {
		return nil, fmt.Errorf("he: ternary sampler: %w", err)
	}
	xe, err := ring.NewSampler(rng, ringQ, rp.Xe(), false)
	if err != nil {
		return nil, fmt.Errorf("he: Gaussian sampler: %w", err)
	}
	pk := key.publicKey()
	return &Encryptor{
		params: p,
		epoch:  key.Epoch,
		rng:    rng,
		pkB:    pk.Value[0].Q,
		pkA:    pk.Value[1].Q,
		xs:     xs,
		xe:     xe,
		u:      ringQ.NewPoly(),
		m:      ringQ.NewPoly(),
		c0:     ringQ.NewPoly(),
		c1:     ringQ.NewPoly(),
	}, nil
}

// Encrypt encodes and encrypts update, whose values are in the same units as clipNorm, and
// binds every ciphertext to b (see UpdateBinding). It returns Params.Ciphertexts(len(update))
// serialised ciphertexts, in order. Every value must be finite and within MaxAbsUnits clip
// norms; otherwise Encrypt returns an error wrapping ErrRange and encrypts nothing.
func (e *Encryptor) Encrypt(update []float64, clipNorm float64, b Binding) ([][]byte, error) {
	if err := checkVector(update, clipNorm); err != nil {
		return nil, err
	}
	if err := e.rng.rekey(); err != nil {
		return nil, err
	}
	defer e.rng.erase()
	p := e.params
	n := p.N()
	k := p.Ciphertexts(len(update))
	out := make([][]byte, k)
	unit := p.scale / clipNorm
	m0, m1 := e.m.Coeffs[0], e.m.Coeffs[1]
	for j := 0; j < k; j++ {
		chunk := update[j*n : min((j+1)*n, len(update))]
		for i, v := range chunk {
			m0[i], m1[i] = p.encodeCoeff(v * unit)
		}
		clear(m0[len(chunk):])
		clear(m1[len(chunk):])
		e.encrypt()
		h := blobHeader{kind: kindUpdate, epoch: e.epoch, binding: b, index: uint32(j), count: uint32(k), dim: uint64(len(update))}
		blob, err := appendBlob(make([]byte, 0, blobSize(p, 2)), p, h, e.c0.Coeffs, e.c1.Coeffs)
		if err != nil {
			return nil, err
		}
		out[j] = blob
	}
	erase(e.m)
	return out, nil
}

// encrypt sets (c0, c1) to a fresh encryption of m.
func (e *Encryptor) encrypt() {
	ringQ := e.params.rlwe().RingQ()
	e.xs.Read(e.u)
	ringQ.NTT(e.u, e.u)
	ringQ.MulCoeffsMontgomery(e.u, e.pkB, e.c0) // u b
	ringQ.MulCoeffsMontgomery(e.u, e.pkA, e.c1) // u a
	erase(e.u)
	ringQ.INTT(e.c0, e.c0)
	ringQ.INTT(e.c1, e.c1)
	e.xe.ReadAndAdd(e.c0) // + e0
	e.xe.ReadAndAdd(e.c1) // + e1
	ringQ.Add(e.c0, e.m, e.c0)
}

// ctrDRBG is the Encryptor's source of randomness for lattigo's samplers: the AES-256-CTR
// keystream under a key drawn from crypto/rand, rekeyed for every Encrypt call and erased
// after it. One key produces at most a few MiB of keystream, far inside AES-CTR's bounds.
type ctrDRBG struct {
	stream cipher.Stream
}

func (d *ctrDRBG) rekey() error {
	var key [32]byte
	defer clear(key[:])
	if _, err := rand.Read(key[:]); err != nil {
		return fmt.Errorf("he: randomness: %w", err)
	}
	return d.keyWith(&key)
}

// keyWith keys the keystream with a key of the caller's: for randomness that others must be
// able to draw again, such as a test ciphertext's c1 (see Challenge.testSum).
func (d *ctrDRBG) keyWith(key *[32]byte) error {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return fmt.Errorf("he: randomness: %w", err)
	}
	d.stream = cipher.NewCTR(block, make([]byte, aes.BlockSize))
	return nil
}

func (d *ctrDRBG) erase() { d.stream = nil }

// Read implements sampling.PRNG. It is only called between rekey and erase.
func (d *ctrDRBG) Read(p []byte) (int, error) {
	clear(p)
	d.stream.XORKeyStream(p, p)
	return len(p), nil
}

// checkVector checks an update before any of it is encoded.
func checkVector(update []float64, clipNorm float64) error {
	if len(update) == 0 || len(update) > MaxDimension {
		return fmt.Errorf("%w: update of %d parameters, want 1 to %d", ErrDimension, len(update), MaxDimension)
	}
	if err := checkClipNorm(clipNorm); err != nil {
		return err
	}
	limit := MaxAbsUnits * clipNorm
	for i, v := range update {
		if !(math.Abs(v) <= limit) { // also catches NaN
			return fmt.Errorf("%w: parameter %d is %v, beyond %d clip norms (%v)", ErrRange, i, v, MaxAbsUnits, limit)
		}
	}
	return nil
}

func checkClipNorm(c float64) error {
	if !(c > 0) || math.IsInf(c, 0) {
		return fmt.Errorf("%w: clip norm %v; the encrypted path needs a finite positive clip norm", ErrRange, c)
	}
	return nil
}
