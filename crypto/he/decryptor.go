package he

import (
	"fmt"
	"slices"

	"github.com/tuneinsight/lattigo/v5/core/rlwe"
	"github.com/tuneinsight/lattigo/v5/mhe"
	"github.com/tuneinsight/lattigo/v5/ring"
)

// Decryptor computes one trustee's decryption shares of sealed sums: lattigo's collective
// key-switching protocol (mhe.KeySwitchProtocol) from the collective secret to the zero key,
// which is collective decryption. With the t-out-of-n access structure, the trustee first turns
// its Shamir share into a t-out-of-t additive share for the active set (mhe.Combiner), so that
// exactly the t shares of that set add up to a decryption.
//
// Each share is h = s_i c1 + g_i + e_i: lattigo's key-switch share with its own small Gaussian
// error g_i (sigma 3.2), plus flooding noise e_i uniform on [-(2^75 - 1), 2^75 - 1] drawn from
// crypto/rand (flooding.go), wide enough that the shares reveal nothing beyond the decrypted sum
// (see the package documentation). The Decryptor does not remember what it decrypted: refusing a
// second request for the same round or sum is the caller's job (the trustee service does it,
// persistently), because it must survive restarts.
//
// A Decryptor is not safe for concurrent use.
type Decryptor struct {
	params Params
	share  *SecretShare
	ks     mhe.KeySwitchProtocol
	cmb    mhe.Combiner
	tsk    mhe.ShamirSecretShare
	zero   *rlwe.SecretKey
	flood  *flooder
}

// NewDecryptor returns a Decryptor for share.
func NewDecryptor(share *SecretShare) (*Decryptor, error) {
	if share == nil {
		return nil, fmt.Errorf("he: NewDecryptor: nil share")
	}
	if err := share.check(); err != nil {
		return nil, err
	}
	p := share.params
	rp := p.rlwe()
	// Sigma 0: lattigo adds only its own fresh-encryption error; the flooding noise is added
	// separately, because lattigo's Gaussian sampler approximates at the width needed.
	ks, err := mhe.NewKeySwitchProtocol(rp, ring.DiscreteGaussian{Sigma: 0, Bound: 0})
	if err != nil {
		return nil, fmt.Errorf("he: key-switch protocol: %w", err)
	}
	points := make([]mhe.ShamirPublicPoint, len(share.Trustees))
	for i, t := range share.Trustees {
		points[i] = mhe.ShamirPublicPoint(t.Point)
	}
	tsk := mhe.NewThresholdizer(rp).AllocateThresholdSecretShare()
	unflatten(tsk.Q, share.value)
	return &Decryptor{
		params: p,
		share:  share,
		ks:     ks,
		cmb:    mhe.NewCombiner(rp, mhe.ShamirPublicPoint(share.Point), points, share.Threshold),
		tsk:    tsk,
		zero:   rlwe.NewSecretKey(rp),
		flood:  newFlooder(p),
	}, nil
}

// Share returns this trustee's decryption share of every ciphertext of sum, for the active
// set of exactly Threshold trustees (by Shamir point) that includes this one. The shares are
// bound to the sum and to the active set, so they combine only with the other shares of that
// same set. Share checks the epoch (ErrEpoch) and the active set (ErrThreshold); sum must come
// from ParseSum.
func (d *Decryptor) Share(sum *Sum, active []uint64) ([][]byte, error) {
	if sum == nil || len(sum.Ciphertexts) == 0 {
		return nil, fmt.Errorf("he: Share: empty sum")
	}
	if sum.params.digest != d.params.digest {
		return nil, fmt.Errorf("%w: sum under %s, share under %s", ErrParams, sum.params.ID(), d.params.ID())
	}
	if sum.Epoch != d.share.Epoch {
		return nil, fmt.Errorf("%w: sum under key epoch %d, this share is of epoch %d", ErrEpoch, sum.Epoch, d.share.Epoch)
	}
	if err := checkActive(d.share.Trustees, d.share.Threshold, active); err != nil {
		return nil, err
	}
	if !slices.Contains(active, d.share.Point) {
		return nil, fmt.Errorf("%w: this trustee (point %d) is not in the active set %v", ErrThreshold, d.share.Point, active)
	}
	rp := d.params.rlwe()
	points := make([]mhe.ShamirPublicPoint, len(active))
	for i, x := range active {
		points[i] = mhe.ShamirPublicPoint(x)
	}
	sk := rlwe.NewSecretKey(rp)
	defer erase(sk.Value.Q)
	if err := d.cmb.GenAdditiveShare(points, mhe.ShamirPublicPoint(d.share.Point), d.tsk, sk); err != nil {
		return nil, fmt.Errorf("he: additive share: %w", err)
	}

	binding := shareBinding(sum.Binding(), active)
	ct := rlwe.NewCiphertext(rp, 1, rp.MaxLevel())
	ct.IsNTT = false
	out := d.ks.AllocateShare(rp.MaxLevel())
	ringQ := rp.RingQ()
	k := len(sum.Ciphertexts)
	shares := make([][]byte, k)
	for j := range k {
		_, c1 := sum.polys(j) // GenShare does not read c0
		unflatten(ct.Value[1], c1)
		d.ks.GenShare(sk, d.zero, ct, &out)
		ringQ.Reduce(out.Value, out.Value)
		if err := d.flood.readAndAdd(out.Value); err != nil {
			return nil, err
		}
		h := blobHeader{kind: kindShare, epoch: sum.Epoch, binding: binding, index: uint32(j), count: uint32(k), dim: uint64(sum.Dimension), point: d.share.Point}
		blob, err := appendBlob(make([]byte, 0, blobSize(d.params, 1)), d.params, h, out.Value.Coeffs)
		if err != nil {
			return nil, err
		}
		shares[j] = blob
	}
	return shares, nil
}

// checkActive checks an active set: exactly threshold distinct points, each a trustee's.
func checkActive(trustees []Trustee, threshold int, active []uint64) error {
	if len(active) != threshold {
		return fmt.Errorf("%w: active set of %d trustees, the threshold is %d", ErrThreshold, len(active), threshold)
	}
	seen := make(map[uint64]bool, len(active))
	for _, x := range active {
		if seen[x] {
			return fmt.Errorf("%w: Shamir point %d appears twice in the active set", ErrThreshold, x)
		}
		seen[x] = true
		if !slices.ContainsFunc(trustees, func(t Trustee) bool { return t.Point == x }) {
			return fmt.Errorf("%w: Shamir point %d is not a trustee of this epoch", ErrThreshold, x)
		}
	}
	return nil
}
