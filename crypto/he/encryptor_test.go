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
	want := rp.RingQ().NewPoly()
	for i, v := range msg {
		want.Coeffs[0][i], want.Coeffs[1][i] = p.encodeCoeff(v * p.scale)
	}

	// noiseStd decrypts ct and returns the standard deviation of (decryption - message).
	noiseStd := func(ct *rlwe.Ciphertext) float64 {
		pt := dec.DecryptNew(ct)
		if pt.IsNTT {
			ringQ.INTT(pt.Value, pt.Value)
		}
		ringQ.Sub(pt.Value, want, pt.Value)
		var sum2 float64
		for i := range p.N() {
			d := p.decodeCoeff(pt.Value.Coeffs[0][i], pt.Value.Coeffs[1][i])
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
		ct := rlwe.NewCiphertext(rp, 1, rp.MaxLevel())
		ct.IsNTT = false
		readPoly(ct.Value[0], cts[0][blobHeaderSize:])
		readPoly(ct.Value[1], cts[0][blobHeaderSize+p.polyBytes():])
		mine += noiseStd(ct) / trials

		pt := rlwe.NewPlaintext(rp, rp.MaxLevel())
		pt.IsNTT = false
		pt.Value.Copy(want)
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
