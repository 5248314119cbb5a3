package eval

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// PrivacyConfig sets the simulation of the deployed rounds that learn the population model under
// differential privacy. Everything a device does is the device's code path: the bounded
// contribution (models.PopulationStats), dp.ClipL2 at the round's clip norm, discrete Gaussian
// noise of dp.DeviceNoiseStd(z, C, m_min, t_dev) from dp.AddGaussian; the coordinator's division
// by the fixed expected count qN is dp.FixedDenominatorMean; z is calibrated with the RDP
// accountant for the total budget over all rounds. Only the threshold encryption is replaced by
// an exact sum: its decrypted sum differs from the plaintext one by about 1e-8 of the clip norm.
//
// One round learns the population, every enrolled device sampled (q = 1), around public
// centres (models.CentersByKind over synthetic typists' windows, which describe nobody); in the
// running system later rounds centre on the previous release's population.
type PrivacyConfig struct {
	// Epsilon is the total budget of both rounds at Delta; +Inf means no noise (exact sums, the
	// non-private reference of the same component). 0 means the privacy simulation is off.
	Epsilon float64
	// Delta defaults to 1e-5.
	Delta float64
	// Stats encodes the statistics round (see models.PopulationStatsConfig for defaults).
	Stats models.PopulationStatsConfig
	// Fleet, when larger than the devices with data, simulates a fleet of that many devices in
	// which device i behaves as recorded device i mod n, each adding its own noise: for data
	// sets of a few users (Balabit's 10), whose own round could not outweigh any noise. Results
	// with a Fleet are labelled as such.
	Fleet int
	// CenterShare is the part of the noise precision (1/z^2) spent on a centring round when a
	// layout has no public centres (default 0.1; see privatePopulation).
	CenterShare float64
	// MinShare sets m_min, the fewest contributions a round may close with, as a share of the
	// expected count (default 0.9); t_dev is dp.DefaultToleratedDevices(m_min).
	MinShare float64
}

// Enabled reports whether the privacy simulation is on.
func (c PrivacyConfig) Enabled() bool { return c.Epsilon != 0 }

func (c *PrivacyConfig) validate() error {
	if !c.Enabled() {
		return nil
	}
	if c.Delta == 0 {
		c.Delta = 1e-5
	}
	if c.MinShare == 0 {
		c.MinShare = 0.9
	}
	if c.CenterShare == 0 {
		c.CenterShare = 0.1
	}
	switch {
	case !(c.Epsilon > 0):
		return fmt.Errorf("eval: epsilon %v, want > 0 or +Inf", c.Epsilon)
	case !(c.Delta > 0 && c.Delta < 1):
		return fmt.Errorf("eval: delta %v, want (0, 1)", c.Delta)
	case !(c.MinShare > 0 && c.MinShare <= 1) || !(c.CenterShare > 0 && c.CenterShare < 1):
		return fmt.Errorf("eval: m_min share %v or centre share %v out of (0, 1)", c.MinShare, c.CenterShare)
	case c.Fleet < 0:
		return fmt.Errorf("eval: fleet of %d devices", c.Fleet)
	}
	return nil
}

// PrivateRounds reports what the simulated rounds used and produced.
type PrivateRounds struct {
	Epsilon, Delta float64
	// NoiseMultiplier is z of the statistics round; 0 without noise. CentringNoise is z of the
	// centring round when there is one.
	NoiseMultiplier, CentringNoise float64
	// Fleet is the number of devices simulated (Devices recorded ones stand for them).
	Fleet int
	// Clip is C; Devices the contributions summed; MMin and TDev the round's m_min and
	// tolerated devices; DeviceNoise the standard deviation each device adds.
	Clip        float64
	Devices     int
	MMin, TDev  int
	DeviceNoise float64
	// EpsilonSpent is the accountant's epsilon of the round at z (<= Epsilon).
	EpsilonSpent float64
	// Buckets is the number of buckets the population models, of Total.
	Buckets, Total int
}

// MarshalJSON writes r with the epsilons of rounds without noise, +Inf, as "inf": JSON has no
// infinity, and `--epsilon inf --json` failed on them.
func (r PrivateRounds) MarshalJSON() ([]byte, error) {
	type plain PrivateRounds // without this method
	inf := func(e float64) any {
		if math.IsInf(e, 1) {
			return "inf"
		}
		return e
	}
	return json.Marshal(struct {
		plain
		Epsilon, EpsilonSpent any // shadow plain's
	}{plain(r), inf(r.Epsilon), inf(r.EpsilonSpent)})
}

// privatePopulation runs the statistics round over the devices' enrolment windows relative to
// the public reference. Without one (nil), a centring round first learns it (centringRound),
// spending CenterShare of the noise precision.
func privatePopulation(ctx context.Context, layout *models.Layout, ref *models.Reference, ids []string, enrol []models.Enrolment, cfg PrivacyConfig, seed uint64, workers int) (*models.Population, PrivateRounds, error) {
	fleet := max(cfg.Fleet, len(enrol))
	rep := PrivateRounds{Epsilon: cfg.Epsilon, Delta: cfg.Delta, Devices: len(enrol), Fleet: fleet, Total: layout.NumBuckets()}
	noisy := !math.IsInf(cfg.Epsilon, 1)
	var zCentre, z float64
	switch {
	case noisy && ref == nil:
		var err error
		if zCentre, z, rep.EpsilonSpent, err = calibrateNoise(cfg.Epsilon, cfg.Delta, cfg.CenterShare); err != nil {
			return nil, rep, err
		}
		rep.NoiseMultiplier, rep.CentringNoise = z, zCentre
	case noisy:
		// The coordinator's planner, for one round with every device sampled.
		plan, err := dp.Plan(dp.PlanConfig{Epsilon: cfg.Epsilon, Delta: cfg.Delta, Population: fleet, ClientsPerRound: fleet, Rounds: 1})
		if err != nil {
			return nil, rep, fmt.Errorf("eval: planning the population round: %w", err)
		}
		z, rep.NoiseMultiplier, rep.EpsilonSpent = plan.NoiseMultiplier, plan.NoiseMultiplier, plan.Epsilon
	default:
		rep.EpsilonSpent = math.Inf(1)
	}
	expected := float64(fleet) // q = 1: every enrolled device is asked
	rep.MMin = max(1, int(cfg.MinShare*expected))
	rep.TDev = dp.DefaultToleratedDevices(rep.MMin)
	if ref == nil {
		var err error
		if ref, err = centringRound(ctx, layout, ids, enrol, zCentre, noisy, fleet, rep.MMin, rep.TDev, seed+7, workers); err != nil {
			return nil, rep, err
		}
	}
	stats, err := models.NewPopulationStats(layout, *ref, cfg.Stats)
	if err != nil {
		return nil, rep, err
	}
	rep.Clip = stats.Clip()
	pop, sigma, err := runStatsRound(ctx, stats, ids, enrol, z, noisy, fleet, rep.MMin, rep.TDev, seed, workers)
	if err != nil {
		return nil, rep, err
	}
	rep.DeviceNoise = sigma
	for _, m := range pop.Mean {
		if !math.IsNaN(m) {
			rep.Buckets++
		}
	}
	return pop, rep, nil
}

// centringRound learns the reference in a round of its own (models.ReferenceStats): the broad
// buckets' means as centres and the roots' spreads as scales (Balabit development protocol at
// epsilon 8: AUC 0.892 -> 0.920 with the scales).
func centringRound(ctx context.Context, layout *models.Layout, ids []string, enrol []models.Enrolment, z float64, noisy bool, fleet, mMin, tDev int, seed uint64, workers int) (*models.Reference, error) {
	rs, err := models.NewReferenceStats(layout)
	if err != nil {
		return nil, err
	}
	sum, sigma, err := noisyRound(ctx, rs.Len(), rs.Clip(), func(i int) ([]float64, error) { return rs.Contribute(enrol[i].Windows) },
		ids, len(enrol), z, noisy, fleet, mMin, tDev, seed, workers)
	if err != nil {
		return nil, err
	}
	ref, err := rs.Decode(sum, sigma*math.Sqrt(float64(fleet)))
	return &ref, err
}

// calibrateNoise finds the smallest base multiplier z whose two rounds (z/sqrt(share) and
// z/sqrt(1-share), every device sampled) spend at most eps at delta.
func calibrateNoise(eps, delta, share float64) (z1, z2, spent float64, err error) {
	spend := func(z float64) (float64, error) {
		e, _, err := dp.Epsilon([]dp.Event{
			{SamplingRate: 1, NoiseMultiplier: z / math.Sqrt(share), Steps: 1},
			{SamplingRate: 1, NoiseMultiplier: z / math.Sqrt(1-share), Steps: 1},
		}, delta, dp.Options{})
		return e, err
	}
	lo, hi := 0.0, 1.0
	for {
		e, err := spend(hi)
		if err != nil {
			return 0, 0, 0, err
		}
		if e <= eps {
			break
		}
		lo, hi = hi, 2*hi
		if hi > 1e4 {
			return 0, 0, 0, fmt.Errorf("eval: epsilon %v at delta %v not reachable: %w", eps, delta, dp.ErrBudgetExhausted)
		}
	}
	for hi-lo > 1e-4*hi {
		mid := (lo + hi) / 2
		e, err := spend(mid)
		if err != nil {
			return 0, 0, 0, err
		}
		if e <= eps {
			hi = mid
		} else {
			lo = mid
		}
	}
	spent, err = spend(hi)
	return hi / math.Sqrt(share), hi / math.Sqrt(1-share), spent, err
}

// runStatsRound is one round as devices and coordinator run it (see noisyRound), decoded by s.
// It returns the population and the noise each device added.
func runStatsRound(ctx context.Context, s *models.PopulationStats, ids []string, enrol []models.Enrolment, z float64, noisy bool, fleet, mMin, tDev int, seed uint64, workers int) (*models.Population, float64, error) {
	sum, sigma, err := noisyRound(ctx, s.Len(), s.Clip(), func(i int) ([]float64, error) { return s.Contribute(enrol[i].Windows) },
		ids, len(enrol), z, noisy, fleet, mMin, tDev, seed, workers)
	if err != nil {
		return nil, 0, err
	}
	pop, err := s.Decode(sum, sigma*math.Sqrt(float64(fleet)))
	return pop, sigma, err
}

// noisyRound is one round as devices and coordinator run it: every device of the fleet (device
// i behaving as recorded device i mod n) encodes its contribution of length entries
// (contribute), clips it to c and noises it; the sum (exact, standing in for the encrypted one)
// is divided by the fixed expected count. It returns the sum again (the decoders work in
// devices) and the noise each device added.
func noisyRound(ctx context.Context, length int, c float64, contribute func(i int) ([]float64, error), ids []string, n int, z float64, noisy bool, fleet, mMin, tDev int, seed uint64, workers int) ([]float64, float64, error) {
	var sigma float64
	if noisy {
		var err error
		if sigma, err = dp.DeviceNoiseStd(z, c, mMin, tDev); err != nil {
			return nil, 0, err
		}
	}
	clipped := make([][]float64, n)
	err := forEach(ctx, n, workers, nil, func(i int) error {
		v, err := contribute(i)
		if err != nil {
			return fmt.Errorf("eval: %s: %w", ids[i], err)
		}
		if _, err := dp.ClipL2(v, c); err != nil {
			return fmt.Errorf("eval: %s: %w", ids[i], err)
		}
		clipped[i] = v
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	sums := make([]*aggregation.Sum, min(workers, fleet))
	for i := range sums {
		sums[i] = aggregation.NewSum(length)
	}
	// Each worker sums its share of the fleet; the shares are added at the end.
	parts := len(sums)
	err = forEach(ctx, parts, parts, nil, func(p int) error {
		v := make([]float64, length)
		for d := p; d < fleet; d += parts {
			copy(v, clipped[d%n])
			if noisy {
				// A seeded stream per device, so that a run repeats exactly; devices use
				// crypto/rand.
				src := rand.NewChaCha8(seedBytes(seed, uint64(d)))
				if err := dp.AddGaussian(v, sigma, src); err != nil {
					return fmt.Errorf("eval: device %d: %w", d, err)
				}
			}
			if err := sums[p].Add(v); err != nil {
				return fmt.Errorf("eval: device %d: %w", d, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	mean := sums[0].Values()
	for _, p := range sums[1:] {
		for i, v := range p.Values() {
			mean[i] += v
		}
	}
	expected := float64(fleet)
	if err := dp.FixedDenominatorMean(mean, expected); err != nil {
		return nil, 0, err
	}
	// The decoders work in devices: undo the division.
	for i := range mean {
		mean[i] *= expected
	}
	return mean, sigma, nil
}

func seedBytes(seed, device uint64) [32]byte {
	var b [32]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(seed >> (8 * i))
		b[8+i] = byte(device >> (8 * i))
	}
	b[16] = 0x9d // domain: population rounds
	return b
}

// keystrokeReference is the public reference of the keystroke population round, the one the
// running coordinator and devices use (keystroke.Reference).
func keystrokeReference(layout *models.Layout, window int) (*models.Reference, error) {
	ref, err := keystroke.Reference(layout, window)
	return &ref, err
}

// FederatePrivately builds what the deployable federation gives every keystroke device: the
// population model from the simulated DP round over the devices' enrolments (see
// PrivacyConfig), relative to the synthetic typists' public reference, and no global
// autoencoder. It is exported for evaluations built on the models elsewhere (the session
// guard's takeover evaluation), so that they use the same rounds rather than a copy of them.
func FederatePrivately(ctx context.Context, layout *models.Layout, ids []string, enrol []models.Enrolment, cfg PrivacyConfig, seed uint64, workers int) (*models.Global, *PrivateRounds, error) {
	if len(ids) != len(enrol) || len(enrol) == 0 {
		return nil, nil, fmt.Errorf("eval: %d device ids for %d enrolments", len(ids), len(enrol))
	}
	if layout.Name != keystroke.TimingFeatureSet {
		return nil, nil, fmt.Errorf("eval: private federation of layout %q, want %q", layout.Name, keystroke.TimingFeatureSet)
	}
	if !cfg.Enabled() {
		return nil, nil, fmt.Errorf("eval: private federation without an epsilon")
	}
	if err := cfg.validate(); err != nil {
		return nil, nil, err
	}
	ref, err := keystrokeReference(layout, 50)
	if err != nil {
		return nil, nil, err
	}
	pop, rep, err := privatePopulation(ctx, layout, ref, ids, enrol, cfg, seed, workers)
	if err != nil {
		return nil, nil, err
	}
	return &models.Global{Population: pop}, &rep, nil
}

// WithDefaults returns c with every unset field at its default, or an error naming the setting
// out of range.
func (c PrivacyConfig) WithDefaults() (PrivacyConfig, error) {
	err := c.validate()
	return c, err
}
