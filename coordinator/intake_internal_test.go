package coordinator

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackDeviceFillsCheckSum: a sampled device sends a frontend many different, signed
// updates for its one task. The tier keeps one, but each used to be added to the frontend's
// check sum, which holds at most he.MaxContributors: a review filled it with 10,000 and had
// every honest device at that frontend refused INVALID_UPDATE. A device now adds one update;
// the others are checked each alone, so a malformed one is still refused.
func TestAttackDeviceFillsCheckSum(t *testing.T) {
	const dim = 4
	check, err := newCheckSum(Insecure{}, dim, 2)
	if err != nil {
		t.Fatal(err)
	}
	update := func(v float64) *vigilv1.Update {
		return &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: dim, Values: []float64{v, v, v, v}}
	}
	for i := range 100 {
		if _, err := check.add(aggregation.Origin{Round: 1, Device: "attacker"}, update(float64(i))); err != nil {
			t.Fatalf("the attacker's update %d: %v", i, err)
		}
	}
	malformed := &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: dim, Values: []float64{1}}
	if _, err := check.add(aggregation.Origin{Round: 1, Device: "attacker"}, malformed); err == nil {
		t.Fatal("a malformed later update of the same device passed the check")
	}
	if _, err := check.add(aggregation.Origin{Round: 1, Device: "honest"}, update(1)); err != nil {
		t.Fatalf("the honest device's update: %v", err)
	}
	if n := check.sum.Count(); n != 2 {
		t.Fatalf("the check sum holds %d updates after 100 of one device and 1 of another, want 2", n)
	}
}

// TestAttackCopyAsALaterUpdate is a compromised device whose own update a frontend checked but
// never stored (it hung up before the tier confirmed it), and which then sends, as its next
// update, an honest device's ciphertexts re-bound to its own task. A device's later updates
// are checked each alone, so as not to fill the check sum; the check sum is still asked whether
// it checked those ciphertexts for another device, and refuses the copy. The device's own first
// update sent again passes: the tier says whether it holds it.
func TestAttackCopyAsALaterUpdate(t *testing.T) {
	const dim = 10
	_, key, err := he.LocalCeremony(he.DefaultParams(), 1, []string{"a", "b", "c"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	check, err := newCheckSum(&ThresholdHE{key: key}, dim, 2)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := he.NewEncryptor(key)
	if err != nil {
		t.Fatal(err)
	}
	update := func(device string, v float64) (aggregation.Origin, *vigilv1.Update) {
		from := aggregation.Origin{Round: 1, Device: device, Nonce: []byte(device)}
		vals := make([]float64, dim)
		for i := range vals {
			vals[i] = v
		}
		cts, err := enc.Encrypt(vals, 1, he.UpdateBinding(key.Epoch, from.Round, from.Device, from.Nonce))
		if err != nil {
			t.Fatal(err)
		}
		return from, &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: dim,
			ParamsId: key.Params().ID(), KeyEpoch: key.Epoch, Ciphertexts: cts}
	}
	thiefFrom, thiefOwn := update("thief", 0)
	if _, err := check.add(thiefFrom, thiefOwn); err != nil {
		t.Fatalf("the thief's own update: %v", err)
	}
	victimFrom, victim := update("victim", 0.5)
	if _, err := check.add(victimFrom, victim); err != nil {
		t.Fatalf("the victim's update: %v", err)
	}
	binding := he.UpdateBinding(key.Epoch, thiefFrom.Round, thiefFrom.Device, thiefFrom.Nonce)
	copied := &vigilv1.Update{Encoding: victim.Encoding, Dimension: dim, ParamsId: victim.ParamsId, KeyEpoch: victim.KeyEpoch}
	for _, ct := range victim.GetCiphertexts() {
		c := bytes.Clone(ct)
		copy(c[32:64], binding[:]) // the ciphertext header's binding
		copied.Ciphertexts = append(copied.Ciphertexts, c)
	}
	if _, err := check.add(thiefFrom, copied); !errors.Is(err, he.ErrReplay) || !errors.Is(err, aggregation.ErrBadUpdate) {
		t.Fatalf("the victim's ciphertexts as the thief's later update: %v, want a replay", err)
	}
	if _, err := check.add(thiefFrom, thiefOwn); err != nil {
		t.Fatalf("the thief's own first update sent again: %v", err)
	}
	_, other := update("thief", 0.25)
	if _, err := check.add(thiefFrom, other); err != nil {
		t.Fatalf("another update of the thief's own: %v", err)
	}

	// The other order, which needs the victim's ciphertexts before this frontend saw them: the
	// copy comes first and passes, and the victim's own update is refused, told at once rather
	// than acknowledged and then dropped from the frontend's part as a replay.
	check, err = newCheckSum(&ThresholdHE{key: key}, dim, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := check.add(thiefFrom, thiefOwn); err != nil {
		t.Fatalf("the thief's own update: %v", err)
	}
	if _, err := check.add(thiefFrom, copied); err != nil {
		t.Fatalf("the copy before the victim's update: %v", err)
	}
	if _, err := check.add(victimFrom, victim); !errors.Is(err, he.ErrReplay) {
		t.Fatalf("the victim's update after its copy: %v, want a replay", err)
	}
}
