package sim

import (
	"fmt"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// PopulationClip is the clip norm of the population rounds: the norm budget each device spends
// on describing its buckets (models.PopulationStatsConfig's default, measured on the Aalto data).
const PopulationClip = 30

// The models an organisation publishes for keystrokes, by name in stores and releases: the
// global autoencoder the training rounds make (the coordinator's default model name), and the
// population model of the population rounds.
const (
	AutoencoderModel = "keystroke-ae"
	PopulationModel  = "keystroke-population"
)

// PopulationWindow is the keystrokes per window of the public reference: the window `vigil
// client` and `vigil agent` use by default. A device whose windows differ computes another
// encoding, and refuses the rounds' tasks rather than send statistics of another kind.
const PopulationWindow = 50

// PopulationRounds returns the population rounds of the keystroke model at noise multiplier z
// (0 with --insecure-no-dp), repeated every `every` rounds (0: once), over windows of window
// keystrokes: the same encoding every device computes from its own code.
func PopulationRounds(z float64, every, window int) (*coordinator.PopulationRounds, error) {
	layout := keystroke.NewLayout()
	ref, err := keystroke.Reference(layout, window)
	if err != nil {
		return nil, fmt.Errorf("population reference: %w", err)
	}
	stats, err := models.NewPopulationStats(layout, ref, models.PopulationStatsConfig{Clip: PopulationClip})
	if err != nil {
		return nil, fmt.Errorf("population statistics: %w", err)
	}
	return &coordinator.PopulationRounds{Stats: stats, Window: window, NoiseMultiplier: z, Every: every, ModelName: PopulationModel}, nil
}
