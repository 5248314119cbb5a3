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

// PopulationRounds configures the rounds that learn one population (background) model, the
// federated component that every user model of its feature set is judged against
// (models.Global.Population).
//
// In a population round every enrolled device is asked (q = 1) for its population statistics
// (models.PopulationStats.Contribute over its enrolment: bounded deviations from a reference,
// within the clip norm by construction), noised and encrypted like any update. The trustees
// open only the sum, which is decoded into a models.Population and stored and released as its
// own model (population.f64 beside the sum), for devices to fit their users' models with. A
// feature set with no public reference (mouse) first learns one in a reference round of the
// same kind (models.ReferenceStats), kept by the coordinator and sent with every statistics
// task and release. The rounds share the coordinator's devices, trustees and privacy ledger,
// so the ledger's epsilon composes every kind of round: the total loss of one user, which is
// what a budget must bound.
type PopulationRounds struct {
	// Stats is the encoding devices contribute in when the feature set has a public reference
	// (keystrokes: synthetic typists): layout, reference and settings. Its Clip is the rounds'
	// clip norm, and its Digest is named in every task.
	Stats *models.PopulationStats
	// Window is the number of keystrokes per window the public reference was built over, told
	// to devices so that they build the same reference (with Stats).
	Window int
	// Reference, instead of Stats, has the reference learnt in a round of its own first, and
	// StatsConfig sets the statistics encoding over it.
	Reference   *models.ReferenceStats
	StatsConfig models.PopulationStatsConfig
	// NoiseMultiplier is z of a statistics round, ReferenceNoiseMultiplier of a reference round
	// (required with differential privacy).
	NoiseMultiplier, ReferenceNoiseMultiplier float64
	// MinShare sets m_min of a round as a share of the enrolled devices (default 0.9): a round
	// closes with at least that many contributions.
	MinShare float64
	// Every asks for a new population after this many further rounds (0: only while no
	// population has been released). A learnt reference is kept.
	Every int
	// ModelName names the population model in the store and in releases (default the global
	// model's name with "-population" for the first population); a learnt reference is stored
	// as ModelName with "-reference".
	ModelName string
}

// layout is the feature set the population describes.
func (p *PopulationRounds) layout() *models.Layout {
	if p.Reference != nil {
		return p.Reference.Layout()
	}
	return p.Stats.Layout()
}

func (p *PopulationRounds) referenceName() string { return p.ModelName + "-reference" }

// statsClip is the clip norm of the statistics rounds: Stats', or that of StatsConfig with its
// defaults, whatever reference is learnt.
func (p *PopulationRounds) statsClip() (float64, error) {
	s, err := p.statsShape()
	if err != nil {
		return 0, err
	}
	return s.Clip(), nil
}

// statsShape is the statistics rounds' encoding, or, for a reference the rounds learn, one over
// a reference of zeros: its length and clip norm are those of any reference learnt.
func (p *PopulationRounds) statsShape() (*models.PopulationStats, error) {
	if p.Stats != nil {
		return p.Stats, nil
	}
	return models.NewPopulationStats(p.layout(), models.Reference{Center: make([]float64, p.layout().NumBuckets())}, p.StatsConfig)
}

func (c *Config) validatePopulation() error {
	names := map[string]bool{c.ModelName: true}
	layouts := map[string]bool{}
	for i, p := range c.Populations {
		if err := c.validateOnePopulation(i, p); err != nil {
			return err
		}
		for _, n := range []string{p.ModelName, p.referenceName()} {
			if names[n] {
				return fmt.Errorf("coordinator: population %d: the model name %q is taken", i, n)
			}
			names[n] = true
		}
		if l := p.layout().Name; layouts[l] {
			return fmt.Errorf("coordinator: two populations of feature set %q", l)
		} else {
			layouts[l] = true
		}
	}
	return nil
}

func (c *Config) validateOnePopulation(i int, p *PopulationRounds) error {
	if p == nil || (p.Stats == nil) == (p.Reference == nil) {
		return fmt.Errorf("coordinator: population %d needs its encoding: either Stats (a public reference) or Reference (a learnt one)", i)
	}
	if p.MinShare == 0 {
		p.MinShare = 0.9
	}
	if p.ModelName == "" && i == 0 {
		p.ModelName = c.ModelName + "-population"
	}
	learnt := p.Reference != nil
	switch {
	case p.ModelName == "":
		return fmt.Errorf("coordinator: population %d needs a model name", i)
	case !learnt && (p.Window < 2 || p.Window > math.MaxUint32):
		return fmt.Errorf("coordinator: population reference window %d, want at least 2", p.Window)
	case !(p.MinShare > 0 && p.MinShare <= 1):
		return fmt.Errorf("coordinator: population m_min share %v, want (0, 1]", p.MinShare)
	case p.Every < 0:
		return fmt.Errorf("coordinator: population every %d rounds is negative", p.Every)
	case c.Privacy.InsecureNoDP && (p.NoiseMultiplier != 0 || p.ReferenceNoiseMultiplier != 0):
		return fmt.Errorf("coordinator: population noise multiplier %v conflicts with InsecureNoDP", p.NoiseMultiplier)
	case !c.Privacy.InsecureNoDP && !(p.NoiseMultiplier > 0):
		return errors.New("coordinator: population rounds need a noise multiplier (PopulationRounds.NoiseMultiplier)")
	case !c.Privacy.InsecureNoDP && learnt && !(p.ReferenceNoiseMultiplier > 0):
		return errors.New("coordinator: a learnt reference needs its round's noise multiplier (PopulationRounds.ReferenceNoiseMultiplier)")
	}
	// A learnt reference's statistics settings are checked now, not when it is learnt.
	if _, err := p.statsClip(); err != nil {
		return fmt.Errorf("coordinator: population %q: %w", p.ModelName, err)
	}
	if err := store.ValidKey(p.referenceName()); err != nil {
		return fmt.Errorf("coordinator: population model name: %w", err)
	}
	return nil
}

// population is one configured population as the coordinator runs it.
type population struct {
	cfg *PopulationRounds
	// model is the newest population released (zero: none yet); reference the learnt reference
	// stored (zero: none yet, or a public one).
	model, reference GlobalModel
	// stats is the statistics round's encoding: cfg.Stats, or over the learnt reference (nil
	// until it is learnt).
	stats *models.PopulationStats
	ref   *models.Reference // the learnt reference, nil for a public one
	// tooSmall is whether the fleet was too small for its next round (logged once);
	// unpublished a version not yet taken by the Publisher; failed its last round that failed.
	tooSmall    bool
	unpublished uint64
	failed      uint64
}

// populationRetry is how many rounds a population waits after one of its rounds failed. A
// round that failed after its sum was opened (the noise drowned every bucket: a fleet whose
// devices have too little of the feature set yet) was charged to the ledger; tried again at
// once, it would spend the budget on nothing round after round.
const populationRetry = 10

// setReference makes ref, learnt by a reference round, the reference of p's statistics rounds.
func (p *population) setReference(ref models.Reference) error {
	stats, err := models.NewPopulationStats(p.cfg.layout(), ref, p.cfg.StatsConfig)
	if err != nil {
		return err
	}
	p.stats, p.ref = stats, &ref
	return nil
}

// due returns the kind of p's next round, if it is due at round next.
func (p *population) due(next uint64) (statev1.RoundKind, bool) {
	switch {
	case p.failed != 0 && next <= p.failed+populationRetry:
		return 0, false
	case p.stats == nil:
		return statev1.RoundKind_ROUND_KIND_REFERENCE_STATS, true
	case p.model.Meta.Version == 0 || (p.cfg.Every > 0 && next > p.model.Meta.Round+uint64(p.cfg.Every)):
		return statev1.RoundKind_ROUND_KIND_POPULATION_STATS, true
	}
	return 0, false
}

// encoding returns the length, clip norm and noise multiplier of a round of kind.
func (p *population) encoding(kind statev1.RoundKind) (length int, clip, z float64) {
	if kind == statev1.RoundKind_ROUND_KIND_REFERENCE_STATS {
		return p.cfg.Reference.Len(), p.cfg.Reference.Clip(), p.cfg.ReferenceNoiseMultiplier
	}
	return p.stats.Len(), p.stats.Clip(), p.cfg.NoiseMultiplier
}

// canModel reports whether a round of kind over n devices, each entry of the sum carrying
// noise of standard deviation noise, can model anything.
func (p *population) canModel(kind statev1.RoundKind, n int, noise float64) bool {
	if kind == statev1.RoundKind_ROUND_KIND_REFERENCE_STATS {
		return p.cfg.Reference.CanModel(n, noise)
	}
	return p.stats.CanModel(n, noise)
}

// populationByName returns the configured population named name, or nil.
func (c *Coordinator) populationByName(name string) *population {
	for _, p := range c.pops {
		if p.cfg.ModelName == name {
			return p
		}
	}
	return nil
}

// populationDueLocked returns the population round due as round next, started with n devices
// enrolled, if any: the populations in order, each learning its reference first if it has
// to. A population round that failed is followed by a training round, so that devices that
// cannot answer one do not stop the training, and its population waits populationRetry
// rounds; and none starts while the fleet is too small
// for its noise to leave any bucket modelled (see PopulationStats.CanModel).
func (c *Coordinator) populationDueLocked(next uint64, n int) (*population, statev1.RoundKind) {
	for _, p := range c.pops {
		if p.failed != 0 && p.failed+1 == next {
			return nil, statev1.RoundKind_ROUND_KIND_TRAIN
		}
	}
	for _, p := range c.pops {
		kind, due := p.due(next)
		if !due {
			continue
		}
		if noise := c.populationNoise(c.populationPrivacy(p, kind, n), n); !p.canModel(kind, n, noise) {
			if !p.tooSmall {
				_, clip, z := p.encoding(kind)
				c.log.Warn("population rounds wait for a larger fleet: with this noise, the statistics of so few devices would model nothing",
					"model", p.cfg.ModelName, "kind", kindName(kind), "enrolled", n, "noise_multiplier", z, "clip", clip)
			}
			p.tooSmall = true
			continue
		}
		p.tooSmall = false
		return p, kind
	}
	return nil, statev1.RoundKind_ROUND_KIND_TRAIN
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

// populationPrivacy is the privacy of p's round of kind started with n devices enrolled: every
// device asked, m_min a share of them, and the round's own z and clip norm. It tolerates the
// configured t_dev colluding devices, or a tenth of m_min if that is more.
func (c *Coordinator) populationPrivacy(p *population, kind statev1.RoundKind, n int) roundPrivacy {
	m := min(n, max(c.cfg.MinUpdates, int(math.Ceil(p.cfg.MinShare*float64(n)))))
	_, clip, z := p.encoding(kind)
	tDev := max(dp.DefaultToleratedDevices(m), min(c.cfg.Privacy.ToleratedDevices, m-1))
	return roundPrivacy{
		insecureNoDP: c.cfg.Privacy.InsecureNoDP, noiseMultiplier: z, clipNorm: clip,
		minParticipants: m, toleratedDevices: tDev,
		samplingRate: 1, expected: float64(n),
	}
}

// isPopulationKind reports whether a round of kind serves a population.
func isPopulationKind(kind statev1.RoundKind) bool {
	return kind == statev1.RoundKind_ROUND_KIND_POPULATION_STATS || kind == statev1.RoundKind_ROUND_KIND_REFERENCE_STATS
}

// roundSetup returns the privacy, the sampling plan and the update length of a round of the
// given kind (of population p, for population kinds) started with n devices enrolled.
func (c *Coordinator) roundSetup(kind statev1.RoundKind, p *population, n int) (roundPrivacy, round.Plan, int, error) {
	if isPopulationKind(kind) {
		rp := c.populationPrivacy(p, kind, n)
		plan := round.Plan{Expected: n, Quorum: aggregation.Quorum{Min: rp.minParticipants}}
		length, _, _ := p.encoding(kind)
		return rp, plan, length, nil
	}
	rp, err := c.roundPrivacy(n)
	return rp, round.Plan{}, len(c.global.Params), err
}

// configuredPrivacy is what the configuration says a round of kind (of population p) should
// have had, with the saved round's participant counts, for comparing the saved round with at
// restart.
func (c *Coordinator) configuredPrivacy(kind statev1.RoundKind, p *population, saved roundPrivacy) roundPrivacy {
	pr := c.cfg.Privacy
	if isPopulationKind(kind) {
		if p == nil {
			return roundPrivacy{} // differs from any saved round: this population is not configured
		}
		now := c.populationPrivacy(p, kind, int(saved.expected))
		// m_min and t_dev follow from the devices enrolled when the round started.
		now.minParticipants, now.toleratedDevices = saved.minParticipants, saved.toleratedDevices
		return now
	}
	return roundPrivacy{insecureNoDP: pr.InsecureNoDP, noiseMultiplier: pr.NoiseMultiplier, clipNorm: pr.ClipNorm,
		minParticipants: c.cfg.MinUpdates, toleratedDevices: pr.ToleratedDevices}
}

// populationTask is what a device needs to contribute to p's round of kind.
func populationTask(p *population, kind statev1.RoundKind) *vigilv1.PopulationTask {
	t := &vigilv1.PopulationTask{FeatureSet: p.cfg.layout().Name, Window: uint32(p.cfg.Window)}
	var d [32]byte
	if kind == statev1.RoundKind_ROUND_KIND_REFERENCE_STATS {
		d = p.cfg.Reference.Digest()
	} else {
		d = p.stats.Digest()
		if p.ref != nil {
			t.Reference = &vigilv1.Reference{Center: p.ref.Center, Scale: p.ref.Scale}
		}
	}
	t.EncodingSha256 = d[:]
	return t
}

// releasePopulation decodes a population round's decrypted sum of n contributions and stores
// the population as the next version of p's model.
func (c *Coordinator) releasePopulation(ctx context.Context, p *population, closed round.Closed, info openRound, sum []float64, charged dp.LedgerEntry) (GlobalModel, error) {
	pop, err := p.stats.Decode(sum, c.populationNoise(info.privacy, len(closed.Participants)))
	if err != nil {
		return GlobalModel{}, fmt.Errorf("decode the population: %w", err)
	}
	if pop.Modelled() == 0 {
		// Devices fitted on a population of nothing judge their users worse than alone.
		return GlobalModel{}, errors.New("the decoded population models no bucket: the noise drowned the statistics; not released")
	}
	pop.Reference = p.ref
	c.mu.Lock()
	prev := p.model
	c.mu.Unlock()
	next := GlobalModel{Params: sum, Population: models.EncodePopulation(pop), Meta: models.Meta{
		Name: p.cfg.ModelName, Version: prev.Meta.Version + 1, Parent: prev.Meta.Version, Round: closed.Round,
		Created: c.cfg.Now().UTC(), FeatureSet: p.cfg.layout().Name, Kind: models.KindPopulation,
		Privacy: info.privacy.meta(charged, c.ledger),
	}}
	if err := saveModel(ctx, c.cfg.Store, &next); err != nil {
		return GlobalModel{}, err
	}
	c.log.Info("population released", "model", p.cfg.ModelName, "round", closed.Round, "version", next.Meta.Version,
		"buckets", pop.Modelled(), "of", p.cfg.layout().NumBuckets())
	return next, nil
}

// learnReference decodes a reference round's decrypted sum of n contributions and stores the
// reference (models.ReferenceParams) as the next version of p's reference
// model. It is not published: devices receive it with each statistics task, and with the
// population released relative to it.
func (c *Coordinator) learnReference(ctx context.Context, p *population, closed round.Closed, info openRound, sum []float64, charged dp.LedgerEntry) (GlobalModel, models.Reference, error) {
	ref, err := p.cfg.Reference.Decode(sum, c.populationNoise(info.privacy, len(closed.Participants)))
	if err != nil {
		return GlobalModel{}, ref, fmt.Errorf("decode the reference: %w", err)
	}
	c.mu.Lock()
	prev := p.reference
	c.mu.Unlock()
	next := GlobalModel{Params: models.ReferenceParams(ref), Meta: models.Meta{
		Name: p.cfg.referenceName(), Version: prev.Meta.Version + 1, Parent: prev.Meta.Version, Round: closed.Round,
		Created: c.cfg.Now().UTC(), FeatureSet: p.cfg.layout().Name, Kind: models.KindReference,
		Privacy: info.privacy.meta(charged, c.ledger),
	}}
	if err := saveModel(ctx, c.cfg.Store, &next); err != nil {
		return GlobalModel{}, ref, err
	}
	c.log.Info("population reference learnt", "model", p.cfg.ModelName, "round", closed.Round, "version", next.Meta.Version)
	return next, ref, nil
}

// loadPopulations returns every configured population with its newest stored model and, for
// one that learns its reference, its newest stored reference.
func loadPopulations(ctx context.Context, cfg Config) ([]*population, error) {
	var out []*population
	for _, pc := range cfg.Populations {
		p := &population{cfg: pc, stats: pc.Stats}
		var err error
		if p.model, err = loadStored(ctx, cfg, pc.ModelName, models.KindPopulation, pc.layout()); err != nil {
			return nil, err
		}
		if pc.Reference != nil {
			if p.reference, err = loadStored(ctx, cfg, pc.referenceName(), models.KindReference, pc.layout()); err != nil {
				return nil, err
			}
			if p.reference.Meta.Version != 0 {
				ref, err := models.ReferenceFromParams(pc.layout(), p.reference.Params)
				if err == nil {
					err = p.setReference(ref)
				}
				if err != nil {
					return nil, fmt.Errorf("coordinator: the store's %q v%d: %w", pc.referenceName(), p.reference.Meta.Version, err)
				}
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// loadStored returns the newest stored version of model name, or a zero model when there is
// none; it must be of kind over layout l.
func loadStored(ctx context.Context, cfg Config, name, kind string, l *models.Layout) (GlobalModel, error) {
	m, err := LoadModel(ctx, cfg.Store, name, 0)
	if errors.Is(err, store.ErrNotFound) {
		return GlobalModel{}, nil
	}
	if err != nil {
		return GlobalModel{}, err
	}
	if m.Meta.Kind != kind || m.Meta.FeatureSet != l.Name {
		return GlobalModel{}, fmt.Errorf("coordinator: the store's %q v%d is a %q model over %q, configured is a %q over %q",
			m.Meta.Name, m.Meta.Version, m.Meta.Kind, m.Meta.FeatureSet, kind, l.Name)
	}
	return m, nil
}

// Population returns the newest model of the first population (zero when none has been
// released, or none is configured).
func (c *Coordinator) Population() GlobalModel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pops) == 0 {
		return GlobalModel{}
	}
	return c.pops[0].model
}

// PopulationOf returns the newest version of the population model named name (zero when none
// has been released, or none is configured).
func (c *Coordinator) PopulationOf(name string) GlobalModel {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.populationByName(name); p != nil {
		return p.model
	}
	return GlobalModel{}
}

// kindName is a round kind as logs and the status name it.
func kindName(k statev1.RoundKind) string {
	switch k {
	case statev1.RoundKind_ROUND_KIND_POPULATION_STATS:
		return "population"
	case statev1.RoundKind_ROUND_KIND_REFERENCE_STATS:
		return "reference"
	}
	return "train"
}
