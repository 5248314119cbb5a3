package coordinator

import (
	"errors"
	"fmt"

	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/release"
)

// checkPolicy refuses to start a coordinator whose own privacy settings are outside the
// privacy policy it hands to devices: every device would refuse every task, and the operator
// should hear why at start, not watch rounds fail. The policy must verify under the root's
// privacy role; the coordinator only passes it on.
func (c *Config) checkPolicy() error {
	if len(c.PrivacyPolicy) == 0 {
		return nil
	}
	if c.Root == nil {
		return errors.New("coordinator: a privacy policy needs the root of trust it verifies under (Config.Root)")
	}
	p, err := c.Root.VerifyPrivacyPolicy(c.PrivacyPolicy, c.Now())
	if err != nil {
		return fmt.Errorf("coordinator: privacy policy: %w", err)
	}
	if c.Privacy.InsecureNoDP {
		return fmt.Errorf("coordinator: %w: rounds without differential privacy (--insecure-no-dp) are outside every privacy policy", release.ErrPolicy)
	}
	tDev := c.Privacy.ToleratedDevices
	if tDev == 0 {
		tDev = dp.DefaultToleratedDevices(c.MinUpdates)
	}
	err = p.Check(release.Task{
		NoiseMultiplier: c.Privacy.NoiseMultiplier, ClipNorm: c.Privacy.ClipNorm,
		MinParticipants: uint32(c.MinUpdates), ToleratedDevices: uint32(tDev),
	})
	if err != nil {
		return fmt.Errorf("coordinator: devices would refuse every task, the settings are outside privacy policy v%d: %w", p.Version, err)
	}
	for _, pop := range c.Populations {
		// m_min of a population round follows from the devices enrolled when it starts; the
		// noise and the clip norm are fixed, and checked here.
		m := max(c.MinUpdates, 2)
		clip, err := pop.statsClip()
		if err != nil {
			return err
		}
		rounds := []struct{ z, clip float64 }{{pop.NoiseMultiplier, clip}}
		if pop.Reference != nil {
			rounds = append(rounds, struct{ z, clip float64 }{pop.ReferenceNoiseMultiplier, pop.Reference.Clip()})
		}
		for _, r := range rounds {
			err := p.Check(release.Task{NoiseMultiplier: r.z, ClipNorm: r.clip,
				MinParticipants: uint32(max(m, int(p.MinParticipants))), ToleratedDevices: uint32(max(dp.DefaultToleratedDevices(m), int(p.MinToleratedDevices)))})
			if err != nil {
				return fmt.Errorf("coordinator: devices would refuse every round of population %q, its settings are outside privacy policy v%d: %w", pop.ModelName, p.Version, err)
			}
		}
	}
	return nil
}
