package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/coordinator/round"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// PopulationRounds configures the rounds that learn the population (background) model, the
// federated component that every user model is judged against (models.Global.Population).
//
// In a population round every enrolled device is asked (q = 1) for its population statistics
// (models.PopulationStats.Contribute over its enrolment: bounded deviations from a public
// reference, within the clip norm by construction), noised and encrypted like any update. The
// trustees open only the sum, which is decoded into a models.Population and stored and released
// as its own model (population.f64 beside the sum), for devices to fit their users' models
// with. The rounds share the coordinator's devices, trustees and privacy ledger, so the
// ledger's epsilon composes both kinds of round: the total loss of one user, which is what a
// budget must bound.
type PopulationRounds struct {
	// Stats is the encoding devices contribute in: layout, public reference and settings. Its
	// Clip is the rounds' clip norm, and its Digest is named in every task.
	Stats *models.PopulationStats
	// Window is the number of keystrokes per window the public reference was built over, told
	// to devices so that they build the same reference.
	Window int
	// NoiseMultiplier is z of a population round (required with differential privacy).
	NoiseMultiplier float64
	// MinShare sets m_min of a population round as a share of the enrolled devices (default
	// 0.9): a round closes with at least that many contributions.
	MinShare float64
	// Every asks for a new population after this many further rounds (0: only while no
	// population has been released).
	Every int
	// ModelName names the population model in the store and in releases (default the global
	// model's name with "-population").
	ModelName string
}

func (c *Config) validatePopulation() error {
	p := c.Population
	if p == nil {
		return nil
	}
	if p.Stats == nil {
		return errors.New("coordinator: population rounds need their encoding (PopulationRounds.Stats)")
	}
	if p.MinShare == 0 {
		p.MinShare = 0.9
	}
	if p.ModelName == "" {
		p.ModelName = c.ModelName + "-population"
	}
	switch {
	case p.Window < 2 || p.Window > math.MaxUint32:
		return fmt.Errorf("coordinator: population reference window %d, want at least 2", p.Window)
	case !(p.MinShare > 0 && p.MinShare <= 1):
		return fmt.Errorf("coordinator: population m_min share %v, want (0, 1]", p.MinShare)
	case p.Every < 0:
		return fmt.Errorf("coordinator: population every %d rounds is negative", p.Every)
	case p.ModelName == c.ModelName:
		return fmt.Errorf("coordinator: the population model needs a name of its own, not %q", p.ModelName)
	case c.Privacy.InsecureNoDP && p.NoiseMultiplier != 0:
		return fmt.Errorf("coordinator: population noise multiplier %v conflicts with InsecureNoDP", p.NoiseMultiplier)
	case !c.Privacy.InsecureNoDP && !(p.NoiseMultiplier > 0):
		return errors.New("coordinator: population rounds need a noise multiplier (PopulationRounds.NoiseMultiplier)")
	}
	if err := store.ValidKey(p.ModelName); err != nil {
		return fmt.Errorf("coordinator: population model name: %w", err)
	}
	return nil
}

// populationDueLocked reports whether round next, started with n devices enrolled, is a
// population round. A population round that failed is followed by a training round, so that
// devices that cannot answer one do not stop the training; and none starts while the fleet is
// too small for its noise to leave any bucket modelled (see PopulationStats.CanModel).
func (c *Coordinator) populationDueLocked(next uint64, n int) bool {
	p := c.cfg.Population
	switch {
	case p == nil:
		return false
	case c.populationFailed != 0 && c.populationFailed+1 == next:
		return false
	case c.population.Meta.Version != 0 && (p.Every == 0 || next <= c.population.Meta.Round+uint64(p.Every)):
		return false
	}
	if noise := c.populationNoise(c.populationPrivacy(n), n); !p.Stats.CanModel(n, noise) {
		if !c.populationTooSmall {
			c.log.Warn("population rounds wait for a larger fleet: with this noise, the statistics of so few devices would model nothing",
				"enrolled", n, "noise_multiplier", p.NoiseMultiplier, "clip", p.Stats.Clip())
		}
		c.populationTooSmall = true
		return false
	}
	c.populationTooSmall = false
	return true
}

// populationNoise is the standard deviation of the noise on each entry of the sum of n
// contributions to a population round with privacy rp.
func (c *Coordinator) populationNoise(rp roundPrivacy, n int) float64 {
	if rp.insecureNoDP {
		return 0
	}
	sigma, err := dp.DeviceNoiseStd(rp.noiseMultiplier, rp.clipNorm, rp.minParticipants, rp.toleratedDevices)
	if err != nil {
		return math.Inf(1)
	}
	// Each of the n devices adds its own share.
	return sigma * math.Sqrt(float64(n))
}

// populationPrivacy is the privacy of a population round started with n devices enrolled:
// every device asked, m_min a share of them, and the rounds' own z and clip norm.
func (c *Coordinator) populationPrivacy(n int) roundPrivacy {
	p := c.cfg.Population
	m := min(n, max(c.cfg.MinUpdates, int(math.Ceil(p.MinShare*float64(n)))))
	return roundPrivacy{
		insecureNoDP: c.cfg.Privacy.InsecureNoDP, noiseMultiplier: p.NoiseMultiplier, clipNorm: p.Stats.Clip(),
		minParticipants: m, toleratedDevices: dp.DefaultToleratedDevices(m),
		samplingRate: 1, expected: float64(n),
	}
}

// roundSetup returns the privacy, the sampling plan and the update length of a round of the
// given kind started with n devices enrolled.
func (c *Coordinator) roundSetup(kind statev1.RoundKind, n int) (roundPrivacy, round.Plan, int, error) {
	if kind == statev1.RoundKind_ROUND_KIND_POPULATION_STATS {
		rp := c.populationPrivacy(n)
		plan := round.Plan{Expected: n, Quorum: aggregation.Quorum{Min: rp.minParticipants}}
		return rp, plan, c.cfg.Population.Stats.Len(), nil
	}
	rp, err := c.roundPrivacy(n)
	return rp, round.Plan{}, len(c.global.Params), err
}

// configuredPrivacy is what the configuration says a round of kind should have had, with the
// saved round's participant counts, for comparing the saved round with at restart.
func (c *Coordinator) configuredPrivacy(kind statev1.RoundKind, saved roundPrivacy) roundPrivacy {
	p := c.cfg.Privacy
	if kind == statev1.RoundKind_ROUND_KIND_POPULATION_STATS {
		if c.cfg.Population == nil {
			return roundPrivacy{} // differs from any saved round: population rounds are not configured
		}
		now := c.populationPrivacy(int(saved.expected))
		// m_min and t_dev follow from the devices enrolled when the round started.
		now.minParticipants, now.toleratedDevices = saved.minParticipants, saved.toleratedDevices
		return now
	}
	return roundPrivacy{insecureNoDP: p.InsecureNoDP, noiseMultiplier: p.NoiseMultiplier, clipNorm: p.ClipNorm,
		minParticipants: c.cfg.MinUpdates, toleratedDevices: p.ToleratedDevices}
}

// populationTask is what a device needs to contribute to a population round.
func (c *Coordinator) populationTask() *vigilv1.PopulationTask {
	p := c.cfg.Population
	d := p.Stats.Digest()
	return &vigilv1.PopulationTask{FeatureSet: p.Stats.Layout().Name, Window: uint32(p.Window), EncodingSha256: d[:]}
}

// releasePopulation decodes a population round's decrypted sum of n contributions and stores
// the population as the next version of the population model.
func (c *Coordinator) releasePopulation(ctx context.Context, closed round.Closed, info openRound, sum []float64, charged dp.LedgerEntry) (GlobalModel, error) {
	p := c.cfg.Population
	pop, err := p.Stats.Decode(sum, c.populationNoise(info.privacy, len(closed.Participants)))
	if err != nil {
		return GlobalModel{}, fmt.Errorf("decode the population: %w", err)
	}
	if pop.Modelled() == 0 {
		// Devices fitted on a population of nothing judge their users worse than alone.
		return GlobalModel{}, errors.New("the decoded population models no bucket: the noise drowned the statistics; not released")
	}
	c.mu.Lock()
	prev := c.population
	c.mu.Unlock()
	next := GlobalModel{Params: sum, Population: models.EncodePopulation(pop), Meta: models.Meta{
		Name: p.ModelName, Version: prev.Meta.Version + 1, Parent: prev.Meta.Version, Round: closed.Round,
		Created: c.cfg.Now().UTC(), FeatureSet: p.Stats.Layout().Name, Kind: models.KindPopulation,
		Privacy: info.privacy.meta(charged, c.ledger),
	}}
	if err := saveModel(ctx, c.cfg.Store, &next); err != nil {
		return GlobalModel{}, err
	}
	c.log.Info("population released", "round", closed.Round, "version", next.Meta.Version,
		"buckets", pop.Modelled(), "of", p.Stats.Layout().NumBuckets())
	return next, nil
}

// loadPopulation returns the newest stored population, or a zero model when there is none.
func loadPopulation(ctx context.Context, cfg Config) (GlobalModel, error) {
	if cfg.Population == nil {
		return GlobalModel{}, nil
	}
	m, err := LoadModel(ctx, cfg.Store, cfg.Population.ModelName, 0)
	if errors.Is(err, store.ErrNotFound) {
		return GlobalModel{}, nil
	}
	if err != nil {
		return GlobalModel{}, err
	}
	if m.Meta.Kind != models.KindPopulation || m.Meta.FeatureSet != cfg.Population.Stats.Layout().Name {
		return GlobalModel{}, fmt.Errorf("coordinator: the store's %q v%d is a %q model over %q, configured is a population over %q",
			m.Meta.Name, m.Meta.Version, m.Meta.Kind, m.Meta.FeatureSet, cfg.Population.Stats.Layout().Name)
	}
	return m, nil
}

// Population returns the newest population model (zero when none has been released).
func (c *Coordinator) Population() GlobalModel {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.population
}

// kindName is a round kind as logs and the status name it.
func kindName(k statev1.RoundKind) string {
	if k == statev1.RoundKind_ROUND_KIND_POPULATION_STATS {
		return "population"
	}
	return "train"
}
