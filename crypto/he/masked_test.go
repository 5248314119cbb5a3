package he

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/ring"
	"github.com/tuneinsight/lattigo/v5/utils/sampling"
)

// This file is a prototype, in tests only, of the encryption docs/masked-updates.md proposes:
// a device's ciphertext is (z + m, a), where a is expanded from the update's binding, so the
// trustees compute it themselves and the device never sends it, and z = -a s + e is a one-time
// mask the trustees make for that binding from their key shares. A device then chooses only
// its plaintext. The tests show that masked updates sum and decrypt under the package's own
// Combine, and that the attack the README lists as open (a compromised device signing, as its
// own, the negated sum of the other honest ciphertexts, so that the round's sum is one
// honest update) reads the update under today's public-key encryption and reads noise under
// masks.

// maskedRound is one round of masked updates under a fixture's key.
type maskedRound struct {
	f     *fixture
	round uint64
	dim   int
	k     int
	ks    mhe.KeySwitchProtocol
	keys  []*rlwe.SecretKey // the mask set's additive shares of the collective secret
	zero  *rlwe.SecretKey
}

// newMaskedRound fixes the trustees that make the masks: the first threshold of f's shares.
// Any threshold of them can decrypt afterwards, since every additive sharing adds up to the
// same collective secret.
func newMaskedRound(t *testing.T, f *fixture, round uint64, dim int) *maskedRound {
	t.Helper()
	p := f.params
	rp := p.rlwe()
	ks, err := mhe.NewKeySwitchProtocol(rp, ring.DiscreteGaussian{Sigma: errorSigma, Bound: errorBound})
	if err != nil {
		t.Fatal(err)
	}
	thr := f.shares[0].Threshold
	points := make([]mhe.ShamirPublicPoint, thr)
	for i := range thr {
		points[i] = mhe.ShamirPublicPoint(f.shares[i].Point)
	}
	r := &maskedRound{f: f, round: round, dim: dim, k: p.Ciphertexts(dim), ks: ks, zero: rlwe.NewSecretKey(rp)}
	for _, d := range f.decryptors(t)[:thr] {
		sk := rlwe.NewSecretKey(rp)
		if err := d.cmb.GenAdditiveShare(points, mhe.ShamirPublicPoint(d.share.Point), d.tsk, sk); err != nil {
			t.Fatal(err)
		}
		r.keys = append(r.keys, sk)
	}
	return r
}

// a expands ciphertext j's c1 polynomial from an update's binding: public, and the same for
// everyone who computes it.
func (r *maskedRound) a(b Binding, j int) ring.Poly {
	key := append([]byte("vigil/he/mask-a/v0:"), b[:]...)
	key = binary.BigEndian.AppendUint32(key, uint32(j))
	prng, err := sampling.NewKeyedPRNG(key)
	if err != nil {
		panic(err)
	}
	return ring.NewUniformSampler(prng, r.f.params.rlwe().RingQ()).ReadNew()
}

// mask is the mask for ciphertext j of binding b: each mask-set trustee's -(a s_i + e_i),
// added up. In the protocol each trustee would send its term to the device alone, encrypted
// to the device's key.
func (r *maskedRound) mask(b Binding, j int) ring.Poly {
	rp := r.f.params.rlwe()
	ringQ := rp.RingQ()
	ct := rlwe.NewCiphertext(rp, 1, rp.MaxLevel())
	ct.IsNTT = false
	ct.Value[1].Copy(r.a(b, j))
	z := ringQ.NewPoly()
	h := r.ks.AllocateShare(rp.MaxLevel())
	for _, sk := range r.keys {
		r.ks.GenShare(sk, r.zero, ct, &h) // a s_i + e_i
		ringQ.Reduce(h.Value, h.Value)
		ringQ.Sub(z, h.Value, z)
	}
	return z
}

// encrypt is a device's masked encryption of update: the c0 polynomials only.
func (r *maskedRound) encrypt(update []float64, clip float64, b Binding) []ring.Poly {
	p := r.f.params
	ringQ := p.rlwe().RingQ()
	n := p.N()
	c0 := make([]ring.Poly, r.k)
	for j := range r.k {
		m := ringQ.NewPoly()
		for i, v := range update[j*n : min((j+1)*n, len(update))] {
			m.Coeffs[0][i], m.Coeffs[1][i] = p.encodeCoeff(v * p.scale / clip)
		}
		c0[j] = r.mask(b, j)
		ringQ.Add(c0[j], m, c0[j])
	}
	return c0
}

// sum is the round's sum as the package's Combine takes it: the coordinator's sum of the c0
// polynomials sent, and the c1 polynomials the trustees expand from the bindings of the
// participant set.
func (r *maskedRound) sum(t *testing.T, c0s [][]ring.Poly, bindings []Binding) *Sum {
	t.Helper()
	p := r.f.params
	ringQ := p.rlwe().RingQ()
	epoch := r.f.key.Epoch
	cts := make([][]byte, r.k)
	for j := range r.k {
		c0, c1 := ringQ.NewPoly(), ringQ.NewPoly()
		for i, b := range bindings {
			ringQ.Add(c0, c0s[i][j], c0)
			ringQ.Add(c1, r.a(b, j), c1)
		}
		h := blobHeader{kind: kindSum, epoch: epoch, binding: SumBinding(epoch, r.round, len(bindings)), index: uint32(j), count: uint32(r.k), dim: uint64(r.dim)}
		blob, err := appendBlob(nil, p, h, c0.Coeffs, c1.Coeffs)
		if err != nil {
			t.Fatal(err)
		}
		cts[j] = blob
	}
	s, err := ParseSum(p, epoch, r.round, len(bindings), cts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMaskedUpdatesSum(t *testing.T) {
	f := newFixture(t, 3, 2)
	const (
		devices = 4
		dim     = 10000 // two ciphertexts
		clip    = 1.0
		round   = 3
	)
	rng := testRNG(t)
	r := newMaskedRound(t, f, round, dim)
	want := make([]float64, dim)
	var c0s [][]ring.Poly
	var bindings []Binding
	for i := range devices {
		u := randomUpdate(rng, dim, clip)
		for x, v := range u {
			want[x] += v
		}
		b := UpdateBinding(f.key.Epoch, round, "device-"+string(rune('a'+i)), nonce(i))
		bindings = append(bindings, b)
		c0s = append(c0s, r.encrypt(u, clip, b))
	}
	sum := r.sum(t, c0s, bindings)
	for _, which := range [][]int{{0, 1}, {1, 2}, {0, 2}} { // the mask set, and two others
		got, err := f.decrypt(t, sum, which, clip)
		if err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(got, want); d > 1e-6 {
			t.Errorf("trustees %v: decrypted sum off by %g of the clip norm", which, d)
		}
	}
}

// TestNegatedSumAttack is the attack of the README's first open limit: a compromised device,
// given the round's other ciphertexts by a malicious coordinator, submits the negation of all
// of them but the victim's, plus an honest encryption of its own update. The round's sum then
// has the contributors the trustees require, and decrypts to the victim's update plus the
// attacker's. Under today's public-key encryption it reads the update; under masks the
// attacker's c0 cannot cancel the others' c1 terms, which the trustees add themselves, and the
// sum decrypts to noise.
func TestNegatedSumAttack(t *testing.T) {
	f := newFixture(t, 3, 2)
	const (
		devices = 4 // the victim is device 0; the attacker is one more
		dim     = 8192
		clip    = 1.0
		round   = 5
	)
	p := f.params
	rng := testRNG(t)
	updates := make([][]float64, devices+1)
	bindings := make([]Binding, devices+1)
	for i := range updates {
		updates[i] = randomUpdate(rng, dim, clip)
		bindings[i] = UpdateBinding(f.key.Epoch, round, "device-"+string(rune('a'+i)), nonce(i))
	}
	attacker := devices
	victimPlusAttacker := make([]float64, dim)
	for x := range dim {
		victimPlusAttacker[x] = updates[0][x] + updates[attacker][x]
	}

	t.Run("public-key encryption, today: the sum is the victim's update", func(t *testing.T) {
		enc, err := NewEncryptor(f.key)
		if err != nil {
			t.Fatal(err)
		}
		cts := make([][][]byte, devices+1)
		for i := range cts {
			if cts[i], err = enc.Encrypt(updates[i], clip, bindings[i]); err != nil {
				t.Fatal(err)
			}
		}
		// The attacker's ciphertext: its own, minus devices 1 to devices-1's, c0 and c1 alike.
		ringQ := p.rlwe().RingQ()
		c0, c1, x0, x1 := ringQ.NewPoly(), ringQ.NewPoly(), ringQ.NewPoly(), ringQ.NewPoly()
		_, body, err := parseBlob(p, cts[attacker][0])
		if err != nil {
			t.Fatal(err)
		}
		readPoly(c0, body[:p.polyBytes()])
		readPoly(c1, body[p.polyBytes():])
		for i := 1; i < devices; i++ {
			_, body, err := parseBlob(p, cts[i][0])
			if err != nil {
				t.Fatal(err)
			}
			readPoly(x0, body[:p.polyBytes()])
			readPoly(x1, body[p.polyBytes():])
			ringQ.Sub(c0, x0, c0)
			ringQ.Sub(c1, x1, c1)
		}
		h := blobHeader{kind: kindUpdate, epoch: f.key.Epoch, binding: bindings[attacker], count: 1, dim: dim}
		if cts[attacker][0], err = appendBlob(nil, p, h, c0.Coeffs, c1.Coeffs); err != nil {
			t.Fatal(err)
		}
		acc, err := NewAccumulator(p, f.key.Epoch, dim)
		if err != nil {
			t.Fatal(err)
		}
		for i := range cts {
			if err := acc.Add(cts[i], bindings[i]); err != nil {
				t.Fatalf("the accumulator refused update %d: %v", i, err)
			}
		}
		sum, err := acc.Seal(round)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.decrypt(t, sum, []int{0, 1}, clip)
		if err != nil {
			t.Fatal(err)
		}
		d := maxAbsDiff(got, victimPlusAttacker)
		if d > 1e-6 {
			t.Fatalf("the attack did not read the victim's update (off by %g); the README's limit is out of date", d)
		}
		t.Logf("the sum is the victim's update plus the attacker's to %g clip norms", d)
	})

	t.Run("masked: the sum is noise", func(t *testing.T) {
		r := newMaskedRound(t, f, round, dim)
		ringQ := p.rlwe().RingQ()
		c0s := make([][]ring.Poly, devices+1)
		for i := range c0s {
			c0s[i] = r.encrypt(updates[i], clip, bindings[i])
		}
		for i := 1; i < devices; i++ {
			ringQ.Sub(c0s[attacker][0], c0s[i][0], c0s[attacker][0])
		}
		got, err := f.decrypt(t, r.sum(t, c0s, bindings), []int{0, 1}, clip)
		if err != nil {
			t.Fatal(err)
		}
		// Noise: the others' a s terms, uniform modulo Q, decode to about 2^19 clip norms.
		d := maxAbsDiff(got, victimPlusAttacker)
		if d < 1000 {
			t.Fatalf("the sum is within %g of the victim's update plus the attacker's", d)
		}
		t.Logf("the sum is %g clip norms from the victim's update plus the attacker's", d)
	})
}

// TestChosenC1ReadsTheKey is the other half of that limit: a compromised device signs the
// ciphertext (0, K) for a constant K = 2^112, which adds K s to the round's sum, and the
// coordinator that colludes with it reads every coefficient of the collective secret s from
// one decrypted sum, before any plausibility check. Under masks no device sends a c1.
func TestChosenC1ReadsTheKey(t *testing.T) {
	f := newFixture(t, 3, 2)
	const (
		devices = 3
		dim     = 8192
		clip    = 1.0
		round   = 9
	)
	p := f.params
	rng := testRNG(t)
	enc, err := NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := NewAccumulator(p, f.key.Epoch, dim)
	if err != nil {
		t.Fatal(err)
	}
	for i := range devices {
		b := UpdateBinding(f.key.Epoch, round, "device-"+string(rune('a'+i)), nonce(i))
		ct, err := enc.Encrypt(randomUpdate(rng, dim, clip), clip, b)
		if err != nil {
			t.Fatal(err)
		}
		if err := acc.Add(ct, b); err != nil {
			t.Fatal(err)
		}
	}
	ringQ := p.rlwe().RingQ()
	c0, c1 := ringQ.NewPoly(), ringQ.NewPoly()
	k0, k1 := p.encodeCoeff(0x1p112)
	c1.Coeffs[0][0], c1.Coeffs[1][0] = k0, k1
	b := UpdateBinding(f.key.Epoch, round, "attacker", nonce(devices))
	h := blobHeader{kind: kindUpdate, epoch: f.key.Epoch, binding: b, count: 1, dim: dim}
	blob, err := appendBlob(nil, p, h, c0.Coeffs, c1.Coeffs)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.Add([][]byte{blob}, b); err != nil {
		t.Fatalf("the accumulator refused (0, K): %v", err)
	}
	sum, err := acc.Seal(round)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.decrypt(t, sum, []int{1, 2}, clip)
	if err != nil {
		t.Fatal(err)
	}

	sk, err := reconstruct(p, f.shares, []uint64{f.shares[0].Point, f.shares[1].Point})
	if err != nil {
		t.Fatal(err)
	}
	s := ringQ.NewPoly()
	ringQ.IMForm(sk.Value.Q, s)
	ringQ.INTT(s, s)
	// K s in clip norms is 2^12 s; the honest updates and the noise are a few clip norms.
	for i := range dim {
		if read, want := math.Round(got[i]/0x1p12), p.decodeCoeff(s.Coeffs[0][i], s.Coeffs[1][i]); read != want {
			t.Fatalf("coefficient %d of s read as %g, it is %g", i, read, want)
		}
	}
}
