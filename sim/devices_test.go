package sim

import (
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/mouse"
)

func TestGlobalSpec(t *testing.T) {
	spec := GlobalSpec()
	if err := spec.Validate(); err != nil || spec.InputDim() != len(keystroke.SummaryNames()) {
		t.Fatalf("global spec %v: %v", spec.Layers, err)
	}
}

// TestMaxClipCoversEveryRound: the policies `vigil setup` and the demo sign allow the clip norm
// of every round the organisation runs by default, the mouse reference round's included.
func TestMaxClipCoversEveryRound(t *testing.T) {
	rs, err := models.NewReferenceStats(mouse.NewLayout())
	if err != nil {
		t.Fatal(err)
	}
	for name, clip := range map[string]float64{"typing population": PopulationClip, "mouse statistics": MouseClip, "mouse reference": rs.Clip()} {
		if clip > MaxClip || (name == "mouse reference" && clip > MouseClip) {
			t.Errorf("%s round at clip %v; the policies allow %v (mouse rounds: %v)", name, clip, MaxClip, MouseClip)
		}
	}
}
