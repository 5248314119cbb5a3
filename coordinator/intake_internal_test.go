package coordinator

import (
	"testing"

	"github.com/vigilauth/vigil/aggregation"
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
