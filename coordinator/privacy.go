package coordinator

import (
	"errors"
	"fmt"

	"github.com/vigilauth/vigil/dp"
)

// Privacy configures user-level differential privacy for the rounds: DP-FedAvg with the noise
// added on the devices (see package dp). The zero value runs rounds without differential privacy.
type Privacy struct {
	// ClipNorm is C: every device clips its update to this L2 norm. Required with noise; on its
	// own it bounds each device's influence without making the rounds private.
	ClipNorm float64
	// NoiseMultiplier is z: the sum of at least MinUpdates honest updates carries Gaussian noise
	// of standard deviation z·C. Zero turns differential privacy off.
	NoiseMultiplier float64
	// Budget caps the model's privacy loss: no round starts that would take it past the budget.
	Budget dp.Budget
	// LedgerPath is the file of the model's privacy ledger, which survives restarts.
	LedgerPath string
}

// Enabled reports whether the rounds are differentially private.
func (p Privacy) Enabled() bool { return p.NoiseMultiplier > 0 }

func (p Privacy) validate() error {
	if p.ClipNorm < 0 || p.NoiseMultiplier < 0 {
		return fmt.Errorf("coordinator: clip norm %v and noise multiplier %v must not be negative", p.ClipNorm, p.NoiseMultiplier)
	}
	if !p.Enabled() {
		return nil
	}
	if !(p.ClipNorm > 0) {
		return errors.New("coordinator: differential privacy needs a clip norm: noise is calibrated to it")
	}
	if err := p.Budget.Validate(); err != nil {
		return fmt.Errorf("coordinator: privacy budget: %w", err)
	}
	if p.LedgerPath == "" {
		return errors.New("coordinator: differential privacy needs a ledger path")
	}
	return nil
}

// roundEvent is what one round costs in privacy when n devices are enrolled.
func (c *Coordinator) roundEvent(n int) (dp.Event, error) {
	q, err := dp.UserLevelSamplingRate(c.cfg.DevicesPerRound, n)
	if err != nil {
		return dp.Event{}, err
	}
	return dp.Event{SamplingRate: q, NoiseMultiplier: c.cfg.Privacy.NoiseMultiplier, Steps: 1}, nil
}

// spent returns the model's epsilon so far and the budget's delta (zeros without privacy).
func (c *Coordinator) spent() (epsilon, delta float64) {
	if c.ledger == nil {
		return 0, 0
	}
	eps, _ := c.ledger.Spent()
	return eps, c.ledger.Budget().Delta
}
