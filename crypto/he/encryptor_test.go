package he

import (
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
)

// TestEncryptorMatchesLattigo compares the Encryptor with lattigo's own rlwe.Encryptor under
// the same collective key: both ciphertexts decrypt (with lattigo's Decryptor and the
// reconstructed collective secret) to the same message, with errors of the same standard
// deviation, which is the one ErrorBound assumes per update: sigma sqrt(1 + 4 n N / 3).
func TestEncryptorMatchesLattigo(t *testing.T) {
	const n = 3
	f := newFixture(t, n, 2)
	p := f.params
	rp := p.rlwe()
	ringQ := rp.RingQ()
	s, err := reconstruct(p, f.shares, []uint64{f.shares[0].Point, f.shares[2].Point})
	if err != nil {
		t.Fatal(err)
	}
	dec := rlwe.NewDecryptor(rp, s)
	rng := testRNG(t)
	msg := randomUpdate(rng, p.N(), 1)
	want := make([]uint64, p.N())
	for i, v := range msg {
		want[i] = encodeCoeff(v*p.scale, p.q)
	}

	// noiseStd decrypts ct and returns the standard deviation of (decryption - message).
	noiseStd := func(ct *rlwe.Ciphertext) float64 {
		pt := dec.DecryptNew(ct)
		if pt.IsNTT {
			ringQ.INTT(pt.Value, pt.Value)
		}
		var sum2 float64
		for i, c := range pt.Value.Coeffs[0] {
			d := decodeCoeff((c+p.q-want[i])%p.q, p.q)
			sum2 += d * d
		}
		return math.Sqrt(sum2 / float64(p.N()))
	}

	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	var mine, theirs float64
	const trials = 8
	for range trials {
		cts, err := enc.Encrypt(msg, 1, Binding{})
		if err != nil {
			t.Fatal(err)
		}
		ct := rlwe.NewCiphertext(rp, 1, 0)
		ct.IsNTT = false
		readCoeffs(ct.Value[0].Coeffs[0], cts[0][blobHeaderSize:])
		readCoeffs(ct.Value[1].Coeffs[0], cts[0][blobHeaderSize+8*p.N():])
		mine += noiseStd(ct) / trials

		pt := rlwe.NewPlaintext(rp, 0)
		pt.IsNTT = false
		copy(pt.Value.Coeffs[0], want)
		ref, err := rlwe.NewEncryptor(rp, f.key.publicKey()).EncryptNew(pt)
		if err != nil {
			t.Fatal(err)
		}
		theirs += noiseStd(ref) / trials
	}
	predicted := errorSigma * math.Sqrt(1+4*n*float64(p.N())/3)
	t.Logf("fresh-encryption noise std: this package %.1f, lattigo %.1f, predicted %.1f", mine, theirs, predicted)
	for name, got := range map[string]float64{"this package": mine, "lattigo": theirs} {
		if math.Abs(got/predicted-1) > 0.1 {
			t.Errorf("%s: noise std %.1f, predicted %.1f", name, got, predicted)
		}
	}
}
