package coordinator

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/models"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Privacy configures user-level differential privacy for the rounds: DP-FedAvg with the noise
// added on the devices (see package dp). There is no silent default: set NoiseMultiplier and
// Budget, or turn differential privacy off explicitly with InsecureNoDP.
type Privacy struct {
	// ClipNorm is C: every device clips its update to this L2 norm. Required with noise; on its
	// own it bounds each device's influence without making the rounds private.
	ClipNorm float64
	// NoiseMultiplier is z: the sum of the at least MinUpdates - ToleratedDevices honest updates
	// of a released round carries Gaussian noise of standard deviation z·C.
	NoiseMultiplier float64
	// ToleratedDevices is t_dev, the number of malicious devices per round the noise is
	// calibrated against: every device adds z·C/sqrt(m_min - t_dev), so t_dev colluders who
	// take their own noise out leave the sum with z·C. Zero means
	// dp.DefaultToleratedDevices(MinUpdates), ceil(m_min/10); it must be below MinUpdates.
	ToleratedDevices int
	// Budget caps the model's privacy loss: no round starts that would take it past the budget.
	Budget dp.Budget
	// LedgerPath is the file of the model's privacy ledger, which survives restarts (default
	// StateDir/model.ledger). Its MAC key lives beside it (dp.LedgerKeyPath).
	LedgerPath string
	// InsecureNoDP releases rounds without differential privacy. Every such round is recorded
	// in the ledger and every release's meta.json says so, and the model can never be made
	// private again. For tests and debugging only.
	InsecureNoDP bool
}

// Enabled reports whether the rounds are differentially private.
func (p Privacy) Enabled() bool { return p.NoiseMultiplier > 0 }

// Errors a coordinator start-up fails with when the privacy ledger and the model store disagree.
var (
	// ErrLedgerBehind means the store holds a version released by a round the ledger does not
	// record: the ledger was deleted, replaced by an older copy, or never kept.
	ErrLedgerBehind = errors.New("coordinator: the privacy ledger is behind the model store")
	// ErrRoundSettingsChanged means a round saved in the state directory was started with other
	// privacy settings than the coordinator is configured with now.
	ErrRoundSettingsChanged = errors.New("coordinator: the open round was started with other privacy settings")
)

func (c *Config) validatePrivacy() error {
	p := &c.Privacy
	switch {
	case p.ClipNorm < 0 || p.NoiseMultiplier < 0:
		return fmt.Errorf("coordinator: clip norm %v and noise multiplier %v must not be negative", p.ClipNorm, p.NoiseMultiplier)
	case p.InsecureNoDP && p.Enabled():
		return fmt.Errorf("coordinator: noise multiplier %v conflicts with InsecureNoDP", p.NoiseMultiplier)
	case !p.InsecureNoDP && !p.Enabled():
		return errors.New("coordinator: differential privacy is not configured: set Privacy.NoiseMultiplier and Privacy.Budget, or Privacy.InsecureNoDP to release rounds without it")
	case p.ToleratedDevices < 0:
		return fmt.Errorf("coordinator: tolerated devices %d is negative", p.ToleratedDevices)
	}
	if p.ToleratedDevices == 0 {
		p.ToleratedDevices = dp.DefaultToleratedDevices(c.MinUpdates)
	}
	if p.ToleratedDevices >= c.MinUpdates {
		return fmt.Errorf("coordinator: tolerated devices %d leave no honest device among m_min = %d", p.ToleratedDevices, c.MinUpdates)
	}
	if p.LedgerPath == "" && c.StateDir != "" {
		p.LedgerPath = filepath.Join(c.StateDir, "model.ledger")
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
		return errors.New("coordinator: differential privacy needs a ledger path (or a state directory)")
	}
	if c.TargetUpdates > 0 {
		// Closing at the first TargetUpdates answers makes a device's inclusion depend on the
		// others' timing: the sample is no longer the Poisson sample the accountant assumes.
		return fmt.Errorf("coordinator: TargetUpdates %d closes rounds early, which breaks the Poisson sampling differential privacy is accounted with", c.TargetUpdates)
	}
	return nil
}

// roundPrivacy is what a round's privacy is: fixed when the round starts, saved with it before
// any device is asked, and charged from, never rebuilt from the configuration.
type roundPrivacy struct {
	insecureNoDP     bool
	noiseMultiplier  float64 // z
	clipNorm         float64 // C
	minParticipants  int     // m_min
	toleratedDevices int     // t_dev
	samplingRate     float64 // q: a device's chance of being in the round (dp.InclusionRate)
	expected         float64 // K, the fixed denominator
}

// roundPrivacy returns the privacy of a round started now with n devices enrolled.
func (c *Coordinator) roundPrivacy(n int) (roundPrivacy, error) {
	// A draw of fewer than m_min devices is thrown away (round.ErrTooFewDevices), so a device
	// is in a kept draw more often than K/N: that rate is what the round is charged with.
	q, err := dp.InclusionRate(c.cfg.DevicesPerRound, n, c.cfg.MinUpdates)
	if err != nil {
		return roundPrivacy{}, err
	}
	p := c.cfg.Privacy
	return roundPrivacy{
		insecureNoDP: p.InsecureNoDP, noiseMultiplier: p.NoiseMultiplier, clipNorm: p.ClipNorm,
		minParticipants: c.cfg.MinUpdates, toleratedDevices: p.ToleratedDevices,
		samplingRate: q, expected: float64(c.cfg.DevicesPerRound),
	}, nil
}

// event is what the round costs: one step of the sampled Gaussian with participation known to
// the coordinator (see package dp for why amplification by hidden sampling is not claimed).
func (r roundPrivacy) event() dp.Event {
	return dp.Event{SamplingRate: r.samplingRate, NoiseMultiplier: r.noiseMultiplier, Steps: 1, Mechanism: dp.KnownParticipation}
}

// charge is the ledger's record of the round, released with participants updates at now.
func (r roundPrivacy) charge(round uint64, participants int, now time.Time) dp.RoundCharge {
	return dp.RoundCharge{
		Round: round, Event: r.event(), Unprotected: r.insecureNoDP, ClipNorm: r.clipNorm,
		MinParticipants: r.minParticipants, ToleratedDevices: r.toleratedDevices, Participants: participants, Time: now,
	}
}

// Adjacency states, in one line, the neighbouring relation the model ledger's epsilon is for.
const Adjacency = "user-level zero-out: one user's whole contribution to every round replaced by the zero update, " +
	"participation in each round known to the adversary"

// meta is the privacy part of the released version's meta.json: settings and the charged
// epsilon, no counts.
func (r roundPrivacy) meta(charged dp.LedgerEntry, l *dp.Ledger) *models.PrivacyMeta {
	if r.insecureNoDP {
		return &models.PrivacyMeta{DifferentialPrivacy: false}
	}
	m := &models.PrivacyMeta{
		DifferentialPrivacy: true, Mechanism: dp.KnownParticipation.String(), Adjacency: Adjacency,
		NoiseMultiplier: r.noiseMultiplier, ClipNorm: r.clipNorm, MinParticipants: r.minParticipants,
		ToleratedDevices: r.toleratedDevices, SamplingRate: r.samplingRate, Epsilon: charged.Epsilon,
	}
	if l != nil {
		m.Delta = l.Budget().Delta
	}
	return m
}

// diff names the settings in which the configured privacy differs from the round's, or "".
func (r roundPrivacy) diff(now roundPrivacy) string {
	var s string
	add := func(name string, was, is any) {
		if was != is {
			s += fmt.Sprintf("; %s was %v, is now %v", name, was, is)
		}
	}
	add("differential privacy off (InsecureNoDP)", r.insecureNoDP, now.insecureNoDP)
	add("noise multiplier z", r.noiseMultiplier, now.noiseMultiplier)
	add("clip norm C", r.clipNorm, now.clipNorm)
	add("m_min", r.minParticipants, now.minParticipants)
	add("tolerated devices t_dev", r.toleratedDevices, now.toleratedDevices)
	if s == "" {
		return ""
	}
	return s[2:]
}

// taskPrivacy is the privacy part of the task of round: the settings saved with the round.
func (c *Coordinator) taskPrivacy(round uint64) *vigilv1.PrivacyConfig {
	c.mu.Lock()
	r := c.open
	c.mu.Unlock()
	p := r.privacy
	if r.round != round {
		// The round closed meanwhile; the device's update will be refused, but its task must
		// still name the configured settings, never zeros.
		cp := c.cfg.Privacy
		p = roundPrivacy{noiseMultiplier: cp.NoiseMultiplier, clipNorm: cp.ClipNorm, minParticipants: c.cfg.MinUpdates,
			toleratedDevices: cp.ToleratedDevices, expected: float64(c.cfg.DevicesPerRound)}
	}
	return &vigilv1.PrivacyConfig{
		ClipNorm: p.clipNorm, NoiseMultiplier: p.noiseMultiplier,
		MinParticipants: uint32(p.minParticipants), ExpectedParticipants: uint32(math.Round(p.expected)),
		ToleratedDevices: uint32(p.toleratedDevices),
	}
}

// openLedger opens the model's privacy ledger and binds it to the store: a model that has
// released rounds must have a ledger recording the newest of them, with that version's
// parameter hash. A missing, older or replaced ledger refuses start-up, as does turning
// differential privacy on for a model that released rounds without it.
func (c *Coordinator) openLedger() error {
	p, g := c.cfg.Privacy, c.global
	if p.LedgerPath == "" {
		return nil // differential privacy off and nothing persisted: tests only
	}
	budget := p.Budget
	snap, err := dp.ReadLedger(p.LedgerPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		for _, p := range c.pops {
			if g.Meta.Round == 0 {
				g = p.model
			}
		}
		if g.Meta.Round > 0 {
			return fmt.Errorf("%w: model %q v%d was released by round %d, but there is no ledger at %s; a deleted ledger cannot be rebuilt",
				ErrLedgerBehind, g.Meta.Name, g.Meta.Version, g.Meta.Round, p.LedgerPath)
		}
	case err != nil:
		return fmt.Errorf("coordinator: %w", err)
	default:
		if r := snap.Unprotected(); len(r) > 0 && p.Enabled() {
			return fmt.Errorf("coordinator: %w: model %q released round %d without it (ledger %s); train a new model in a new directory",
				dp.ErrNotPrivate, c.cfg.ModelName, r[0], p.LedgerPath)
		}
		if !p.Enabled() {
			budget = snap.Budget // off: keep recording under the ledger's own budget
		}
	}
	if !p.Enabled() && budget == (dp.Budget{}) {
		budget = unprotectedBudget()
	}
	if err := os.MkdirAll(filepath.Dir(p.LedgerPath), 0o700); err != nil {
		return fmt.Errorf("coordinator: ledger directory: %w", err)
	}
	l, err := dp.OpenLedger(p.LedgerPath, c.cfg.ModelName, budget)
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	// The populations' rounds are charged to the same ledger, and bound the same way.
	bound := []GlobalModel{c.global}
	for _, p := range c.pops {
		bound = append(bound, p.model, p.reference)
	}
	for _, g := range bound {
		if g.Meta.Round == 0 {
			continue
		}
		e, ok := l.Entry(g.Meta.Round)
		if !ok {
			return fmt.Errorf("%w: model %q v%d was released by round %d, which the ledger %s does not record",
				ErrLedgerBehind, g.Meta.Name, g.Meta.Version, g.Meta.Round, p.LedgerPath)
		}
		switch e.ModelSHA256 {
		case g.Meta.ParamsSHA256:
		case "": // the coordinator stopped between storing the version and recording it
			if err := l.RecordRelease(g.Meta.Round, g.Meta.ParamsSHA256); err != nil {
				return fmt.Errorf("coordinator: %w", err)
			}
		default:
			return fmt.Errorf("%w: round %d released parameters with SHA-256 %s, the ledger records %s",
				ErrLedgerBehind, g.Meta.Round, g.Meta.ParamsSHA256, e.ModelSHA256)
		}
	}
	c.ledger = l
	return nil
}

// unprotectedBudget is the budget of a ledger created while differential privacy is off. It is
// never charged against: such a ledger only records rounds released without privacy.
func unprotectedBudget() dp.Budget { return dp.Budget{Epsilon: 1, Delta: 1e-5} }

// spent returns the model's epsilon so far and the budget's delta (zeros without privacy).
func (c *Coordinator) spent() (epsilon, delta float64) {
	if c.ledger == nil || !c.cfg.Privacy.Enabled() {
		return 0, 0
	}
	eps, _ := c.ledger.Spent()
	return eps, c.ledger.Budget().Delta
}

// setRemaining updates the remaining-budget gauge.
func (c *Coordinator) setRemaining() {
	if c.ledger == nil || !c.cfg.Privacy.Enabled() {
		return
	}
	eps, _ := c.ledger.Spent()
	c.metrics.epsilonRemaining.Set(max(0, c.ledger.Budget().Epsilon-eps))
}
