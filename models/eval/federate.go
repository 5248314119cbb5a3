package eval

import (
	"context"
	"fmt"

	"github.com/vigilauth/vigil/models"
)

// Federate builds what the simulated federation gives every device, exactly as Keystrokes and
// Mouse build it: the population model from the sum of the devices' enrolment statistics and
// the global autoencoder by federated averaging over their normalised enrolment summaries
// (plaintext, without DP noise). ids name the devices in errors; enrol[i] is device i's own
// enrolment. It is exported for evaluations built on the models elsewhere (the session guard's
// takeover evaluation), so that they use the same federation rather than a copy of it.
func Federate(ctx context.Context, layout *models.Layout, ids []string, enrol []models.Enrolment, model models.UserModelConfig, fed FedConfig, seed uint64, workers int, progress func(done, total int)) (*models.Global, error) {
	if len(ids) != len(enrol) {
		return nil, fmt.Errorf("eval: %d device ids for %d enrolments", len(ids), len(enrol))
	}
	if len(enrol) == 0 {
		return nil, fmt.Errorf("eval: no enrolments to federate")
	}
	if err := layout.Validate(); err != nil {
		return nil, err
	}
	var err error
	if model, err = model.WithDefaults(); err != nil {
		return nil, err
	}
	if err := fed.validate(); err != nil {
		return nil, err
	}
	return federateEnrolments(ctx, layout, ids, enrol, model, fed, seed, workers, progress)
}

// WithDefaults returns c with every unset field at its default, or an error naming the setting
// out of range.
func (c FedConfig) WithDefaults() (FedConfig, error) {
	err := c.validate()
	return c, err
}
