package sim

import (
	"fmt"
	"math"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	"github.com/vigilauth/vigil/models/mouse"
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

// MousePopulationModel names the mouse population model, which users' mouse models are fitted
// on; its learnt reference is stored beside it as MousePopulationModel + "-reference".
const MousePopulationModel = "mouse-population"

// MouseReferenceModel names the mouse population's learnt reference in the store (the
// coordinator's naming: the population's name with "-reference").
const MouseReferenceModel = MousePopulationModel + "-reference"

// MouseClip is the clip norm of the mouse statistics rounds: every device has many actions in
// nearly every one of the mouse layout's ~800 buckets, and describing them in the reference's
// scales takes more norm than typing's sparse digraphs (Balabit development protocol at
// epsilon 8: AUC 0.920, 0.928, 0.924 and 0.912 at clips 80, 100, 120 and 160). The clip bounds
// a device's influence, not its privacy: the noise scales with it.
const MouseClip = 100

// MaxClip is the largest clip norm of any round an organisation runs by default, the ceiling
// of `vigil setup`'s privacy policy.
const MaxClip = max(PopulationClip, MouseClip)

// MouseReferenceShare is the part of the mouse rounds' noise precision (1/z²) spent on the
// reference round, as the evaluation splits it (models/eval PrivacyConfig.CenterShare): the
// reference round's z is the statistics round's times sqrt((1-share)/share) = 3.
const MouseReferenceShare = 0.1

// MouseReferenceNoise is the reference round's noise multiplier that goes with a statistics
// round at z.
func MouseReferenceNoise(z float64) float64 {
	return z * math.Sqrt((1-MouseReferenceShare)/MouseReferenceShare)
}

// MousePopulationRounds returns the rounds of the mouse population: a reference round at
// noise multiplier zRef that learns the centres and spreads the mouse layout has no public
// source for, then statistics rounds at z relative to it (both 0 with --insecure-no-dp),
// repeated every `every` rounds (0: once).
func MousePopulationRounds(z, zRef float64, every int) (*coordinator.PopulationRounds, error) {
	rs, err := models.NewReferenceStats(mouse.NewLayout())
	if err != nil {
		return nil, fmt.Errorf("mouse reference statistics: %w", err)
	}
	return &coordinator.PopulationRounds{
		Reference: rs, StatsConfig: MouseStatsConfig(), NoiseMultiplier: z, ReferenceNoiseMultiplier: zRef,
		Every: every, ModelName: MousePopulationModel,
	}, nil
}

// MouseStatsConfig is the mouse statistics encoding's settings, which a device's population
// check (models.LearntBounds) must share with the rounds.
func MouseStatsConfig() models.PopulationStatsConfig {
	return models.PopulationStatsConfig{Clip: MouseClip}
}
