package sim

import (
	"testing"

	"github.com/vigilauth/vigil/models/keystroke"
)

func TestGlobalSpec(t *testing.T) {
	spec := GlobalSpec()
	if err := spec.Validate(); err != nil || spec.InputDim() != len(keystroke.SummaryNames()) {
		t.Fatalf("global spec %v: %v", spec.Layers, err)
	}
}
