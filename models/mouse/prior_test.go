package mouse

import (
	"math"
	"testing"

	"github.com/vigilauth/vigil/models"
)

// TestReferencePrior: the mouse layout's prior is fixed (every call gives the same bits, on a
// grid of 1/64, so that every platform encodes the same digest), a valid prior of its layout,
// and gives every feature's root a centre.
func TestReferencePrior(t *testing.T) {
	l := NewLayout()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	again := NewLayout().ReferencePrior
	for b, p := range l.ReferencePrior {
		if math.Float64bits(p) != math.Float64bits(again[b]) {
			t.Fatalf("bucket %d: prior %v, then %v", b, p, again[b])
		}
		if !math.IsNaN(p) && p*64 != math.Round(p*64) {
			t.Errorf("bucket %d: prior %v off the 1/64 grid", b, p)
		}
	}
	for f := range NumFeatures {
		if p := l.ReferencePrior[featPoolBase+f]; math.IsNaN(p) || math.Abs(p) > 20 {
			t.Errorf("feature %q: prior %v", featureNames[f], p)
		}
	}
	// Devices and coordinator build the encoding from the layout alone, so both agree on it.
	a, err := models.NewReferenceStats(NewLayout())
	if err != nil {
		t.Fatal(err)
	}
	b, err := models.NewReferenceStats(NewLayout())
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest() != b.Digest() {
		t.Error("two builds of the mouse reference encoding differ")
	}
}
