package client

import (
	"errors"
	"fmt"
	"io"

	"github.com/vigilauth/vigil/dp"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// privacyEvent is what taking part in the task costs this device: one Gaussian step with the
// task's noise multiplier and no amplification by sampling, because the device knows it took
// part.
func privacyEvent(p *vigilv1.PrivacyConfig) dp.Event {
	return dp.Event{SamplingRate: 1, NoiseMultiplier: p.GetNoiseMultiplier(), Steps: 1, Mechanism: dp.KnownParticipation}
}

// checkPrivacy refuses a task whose privacy settings are malformed or weaker than the device's
// policy, or which would take the device past its own budget.
func (a *Agent) checkPrivacy(p *vigilv1.PrivacyConfig) error {
	c, z := p.GetClipNorm(), p.GetNoiseMultiplier()
	switch {
	case c < 0 || z < 0:
		return fmt.Errorf("task has clip norm %v and noise multiplier %v; neither may be negative", c, z)
	case z > 0 && !(c > 0):
		return errors.New("task asks for noise without a clip norm to calibrate it to")
	case z > 0 && p.GetMinParticipants() < 1:
		return errors.New("task asks for distributed noise but names no minimum number of participants")
	case z < a.cfg.MinNoiseMultiplier:
		return fmt.Errorf("task asks for noise multiplier %v, this device requires at least %v", z, a.cfg.MinNoiseMultiplier)
	case z == 0 && a.cfg.Ledger != nil:
		// A round without noise has no finite privacy loss: a device that accounts its own
		// loss cannot take part in one.
		return errors.New("task asks for no differential privacy; this device keeps a privacy ledger and takes part only in private rounds")
	}
	if z > 0 {
		if _, err := deviceNoiseStd(p); err != nil {
			return fmt.Errorf("task's privacy settings: %w", err)
		}
	}
	if a.cfg.Ledger != nil && z > 0 {
		if _, _, err := a.cfg.Ledger.Check(privacyEvent(p)); err != nil {
			return fmt.Errorf("this device's privacy budget is spent: %w", err)
		}
	}
	return nil
}

// deviceNoiseStd is this device's share of the task's noise: z·C/sqrt(m_min - t_dev), so that
// the honest devices of a released sum carry z·C even if t_dev of the devices in it collude.
// The four numbers come from the task, so a privacy policy checks them, not this formula.
func deviceNoiseStd(p *vigilv1.PrivacyConfig) (float64, error) {
	return dp.DeviceNoiseStd(p.GetNoiseMultiplier(), p.GetClipNorm(), int(p.GetMinParticipants()), int(p.GetToleratedDevices()))
}

// protect clips delta to the task's norm and adds this device's share of the noise.
func protect(delta []float64, p *vigilv1.PrivacyConfig, rnd io.Reader) error {
	c, z := p.GetClipNorm(), p.GetNoiseMultiplier()
	if c > 0 {
		if _, err := dp.ClipL2(delta, c); err != nil {
			return err
		}
	}
	if z == 0 {
		return nil
	}
	sigma, err := deviceNoiseStd(p)
	if err != nil {
		return err
	}
	return dp.AddGaussian(delta, sigma, rnd)
}
