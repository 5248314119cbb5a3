package eval

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// KeystrokeConfig sets a keystroke evaluation. The zero value of every field but Dir gives the
// default.
type KeystrokeConfig struct {
	// Dir holds the participants' *_keystrokes.txt[.gz] files.
	Dir string
	// Window is L, the keystrokes per window (default 50); Enrol is G, the windows each user
	// enrols with (default 5); Stride is the step between the overlapping enrolment windows
	// that feed the autoencoder and forest (default Window/5).
	Window, Enrol, Stride int
	// Skip and Users select participants by file name order: skip the first Skip, then take
	// Users (0: all the rest). Development tuning used Skip 0, Users 100.
	Skip, Users int
	// Background, when positive, takes the first Background selected participants out of the
	// evaluation: only they train the federated models (on their enrolment windows), and the
	// rest are evaluated, so that no evaluated user's data is in the federation at all.
	Background int
	// Seed fixes every random choice: initialisations, forests, federated sampling.
	Seed uint64
	// Workers bounds the parallelism (default GOMAXPROCS).
	Workers int
	// Model configures the user models; Fed the federated training of the global autoencoder.
	Model models.UserModelConfig
	Fed   FedConfig
	// Privacy, when enabled, replaces the plaintext federation by the deployable one: the
	// population model learnt through simulated DP rounds (see PrivacyConfig), and no global
	// autoencoder (see Keystrokes).
	Privacy PrivacyConfig
	// SkipAlone leaves out the models learnt alone (Alone stays zero): they do not depend on
	// the federation, so a sweep over privacy budgets measures them once.
	SkipAlone bool
	// Progress, when set, is told of progress through each stage.
	Progress func(stage string, done, total int) `json:"-"`
}

func (c *KeystrokeConfig) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("eval: no data directory")
	}
	if c.Window == 0 {
		c.Window = 50
	}
	if c.Enrol == 0 {
		c.Enrol = 5
	}
	if c.Stride == 0 {
		c.Stride = max(c.Window/5, 1)
	}
	switch {
	case c.Window < 10 || c.Window > 10000:
		return fmt.Errorf("eval: window of %d keystrokes, want 10..10000", c.Window)
	case c.Enrol < 1 || c.Enrol > 1000:
		return fmt.Errorf("eval: %d enrolment windows, want 1..1000", c.Enrol)
	case c.Stride < 1 || c.Stride > c.Window:
		return fmt.Errorf("eval: stride %d, want 1..window", c.Stride)
	case c.Skip < 0 || c.Users < 0 || c.Background < 0:
		return fmt.Errorf("eval: negative participant selection (skip %d, users %d, background %d)", c.Skip, c.Users, c.Background)
	}
	var err error
	if c.Model, err = c.Model.WithDefaults(); err != nil {
		return err
	}
	if err := c.Privacy.validate(); err != nil {
		return err
	}
	return c.Fed.validate()
}

func (c *KeystrokeConfig) progress(stage string) func(done, total int) {
	if c.Progress == nil {
		return nil
	}
	return func(done, total int) { c.Progress(stage, done, total) }
}

// KeystrokeResult is the outcome of a keystroke evaluation.
type KeystrokeResult struct {
	Config KeystrokeConfig
	// Protocol describes in words what was trained on what and what was tested.
	Protocol string
	// Files is the number of participant files selected; Users the number evaluated.
	Files, Users int
	// Read counts the rows read and kept, and what was dropped, by reason (rows, windows,
	// participants).
	Read keystroke.ReadStats
	// GenuineTrials and ImpostorTrials count the trials of each user model, summed over users.
	GenuineTrials, ImpostorTrials int
	// Federated is the result with the federated population model and global autoencoder;
	// Alone with every device learning only from its own enrolment.
	Federated, Alone Outcome
	// Private reports the simulated DP rounds when Config.Privacy is enabled.
	Private *PrivateRounds `json:",omitempty"`
	// Durations of the stages.
	LoadTime, FederationTime, EvalTime time.Duration
}

// Keystrokes runs the keystroke evaluation: per user, enrol on the first Enrol windows, test on
// the user's remaining windows (genuine) and on every other user's test windows (impostors).
func Keystrokes(ctx context.Context, cfg KeystrokeConfig) (*KeystrokeResult, error) {
	d, err := loadKeystrokes(ctx, cfg)
	if err != nil {
		return d.res, err
	}
	return d.run(ctx, d.res.Config)
}

// keystrokeData is a keystroke evaluation's data, loaded once for any number of federations.
type keystrokeData struct {
	res             *KeystrokeResult // with Config, Files, Read, Users, LoadTime set
	users, fedUsers []keyUser
	layout          *models.Layout
}

// loadKeystrokes validates cfg and reads and splits the participants.
func loadKeystrokes(ctx context.Context, cfg KeystrokeConfig) (keystrokeData, error) {
	if err := cfg.validate(); err != nil {
		return keystrokeData{}, err
	}
	files, err := keystroke.AaltoFiles(cfg.Dir)
	if err != nil {
		return keystrokeData{}, err
	}
	if cfg.Skip >= len(files) {
		return keystrokeData{}, fmt.Errorf("eval: skipping %d of %d participant files leaves none", cfg.Skip, len(files))
	}
	files = files[cfg.Skip:]
	if cfg.Users > 0 && cfg.Users < len(files) {
		files = files[:cfg.Users]
	}
	d := keystrokeData{res: &KeystrokeResult{Config: cfg, Files: len(files)}, layout: keystroke.NewLayout()}
	start := time.Now()
	users, stats, err := loadKeystrokeUsers(ctx, files, cfg.Window, cfg.Enrol, cfg.Stride, cfg.Workers, cfg.progress("read"))
	d.res.Read = stats
	if err != nil {
		return d, err
	}
	d.fedUsers, d.users = users, users
	if cfg.Background > 0 {
		if cfg.Background > len(users)-2 {
			return d, fmt.Errorf("eval: %d background participants leave fewer than 2 of %d to evaluate", cfg.Background, len(users))
		}
		d.fedUsers, d.users = users[:cfg.Background], users[cfg.Background:]
	}
	d.res.Users = len(d.users)
	d.res.LoadTime = time.Since(start)
	return d, nil
}

// run federates as cfg says (cfg differs from the loading one only in Privacy and SkipAlone)
// and scores every user.
func (d keystrokeData) run(ctx context.Context, cfg KeystrokeConfig) (*KeystrokeResult, error) {
	r := *d.res
	res := &r
	res.Config = cfg
	res.Protocol = keystrokeProtocol(cfg, len(d.users))
	start := time.Now()
	var global *models.Global
	var err error
	if cfg.Privacy.Enabled() {
		// The deployable federation: only the population model. The global autoencoder is left
		// out because it changes nothing measurable (mean EER 6.50% with it, 6.52% without, on
		// the plaintext simulation) while its rounds would spend privacy budget.
		ids, enrol := keyEnrolments(d.fedUsers)
		if global, res.Private, err = FederatePrivately(ctx, d.layout, ids, enrol, cfg.Privacy, cfg.Seed, cfg.Workers); err != nil {
			return res, err
		}
	} else if global, err = federate(ctx, d.layout, d.fedUsers, cfg); err != nil {
		return res, err
	}
	res.FederationTime = time.Since(start)

	start = time.Now()
	trials, err := scoreUsers(ctx, d.layout, global, d.users, cfg)
	if err != nil {
		return res, err
	}
	res.EvalTime = time.Since(start)
	for _, t := range trials {
		res.GenuineTrials += t.genuine
		res.ImpostorTrials += t.impostor
	}
	if res.Federated, err = summarise(trials, modeFederated); err != nil {
		return res, err
	}
	if !cfg.SkipAlone {
		if res.Alone, err = summarise(trials, modeAlone); err != nil {
			return res, err
		}
	}
	return res, nil
}

// KeystrokesTradeoff runs the keystroke evaluation of the deployable federation at each total
// epsilon (math.Inf(1): without noise) on one load of the data; the first result also holds
// the models learnt alone, which no budget changes. cfg.Privacy sets everything but Epsilon.
func KeystrokesTradeoff(ctx context.Context, cfg KeystrokeConfig, epsilons []float64) ([]*KeystrokeResult, error) {
	if len(epsilons) == 0 {
		return nil, fmt.Errorf("eval: no epsilon to evaluate")
	}
	cfg.Privacy.Epsilon = epsilons[0]
	d, err := loadKeystrokes(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var out []*KeystrokeResult
	for i, eps := range epsilons {
		c := d.res.Config
		c.Privacy.Epsilon, c.SkipAlone = eps, i > 0 || cfg.SkipAlone
		if err := c.Privacy.validate(); err != nil {
			return out, err
		}
		r, err := d.run(ctx, c)
		if err != nil {
			return out, fmt.Errorf("eval: epsilon %v: %w", eps, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func keystrokeProtocol(cfg KeystrokeConfig, users int) string {
	who := "every device contributes"
	if cfg.Background > 0 {
		who = fmt.Sprintf("only the %d background participants, who are not evaluated, contribute", cfg.Background)
	}
	fed := fmt.Sprintf("Federated (plaintext simulation, which no release can ship): %s sufficient statistics of "+
		"their enrolment windows to the population model (one exact sum) and train the global autoencoder on their own "+
		"enrolment windows by FedAvg (%d rounds of up to %d devices, %d local epochs, no clipping or noise); personal "+
		"models start from the global autoencoder and are judged against the population.",
		who, cfg.Fed.Rounds, cfg.Fed.PerRound, cfg.Fed.LocalEpochs)
	if p := cfg.Privacy; p.Enabled() {
		noise := fmt.Sprintf("a total epsilon of %g at delta %g (RDP accountant), discrete Gaussian noise added by every "+
			"device at standard deviation zC/sqrt(m_min - t_dev), m_min = %g of the devices", p.Epsilon, p.Delta, p.MinShare)
		if math.IsInf(p.Epsilon, 1) {
			noise = "no noise (epsilon inf: the non-private reference of the same rounds)"
		}
		fed = fmt.Sprintf("Deployable federation: %s bounded population statistics of their enrolment windows "+
			"(models.PopulationStats relative to a public reference from synthetic typists) in one round of every device, "+
			"clipped to C (dp.ClipL2) with %s; the sum (exact, standing in for the encrypted sum) is divided by the "+
			"fixed expected count and decoded into the population model. No global autoencoder is shipped; personal "+
			"models are judged against the population.", who, noise)
	}
	return fmt.Sprintf("Each participant's keystrokes (all test sections in time order) are cut into "+
		"consecutive windows of %d keystrokes; windows with too few usable timings are dropped. "+
		"The first %d usable windows enrol the user; the rest are the user's genuine trials. "+
		"Impostor trials of a user are the test windows of all other %d participants. %s "+
		"Alone: the same models learnt from the user's enrolment only. "+
		"No test window is used in any training, personal or federated.",
		cfg.Window, cfg.Enrol, users-1, fed)
}

// federate builds what the federation would give every device from users' enrolments.
func federate(ctx context.Context, layout *models.Layout, users []keyUser, cfg KeystrokeConfig) (*models.Global, error) {
	ids, enrol := keyEnrolments(users)
	return federateEnrolments(ctx, layout, ids, enrol, cfg.Model, cfg.Fed, cfg.Seed, cfg.Workers, cfg.progress("federate"))
}

// federateEnrolments builds what the federation would give every device: the population model
// from the sum of every device's enrolment statistics, and the global autoencoder by federated
// averaging over every device's normalised enrolment summaries.
func federateEnrolments(ctx context.Context, layout *models.Layout, ids []string, enrol []models.Enrolment, mc models.UserModelConfig, fc FedConfig, seed uint64, workers int, progress func(done, total int)) (*models.Global, error) {
	// The coordinator's plaintext running sum stands in for the encrypted one.
	sum := aggregation.NewSum(models.ContributionLen(layout))
	for i, e := range enrol {
		c, err := models.Contribution(layout, e.Windows)
		if err != nil {
			return nil, fmt.Errorf("eval: %s: %w", ids[i], err)
		}
		if err := sum.Add(c); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", ids[i], err)
		}
	}
	pop, err := models.NewPopulation(layout, sum.Values(), models.PopulationConfig{})
	if err != nil {
		return nil, err
	}
	spec, err := models.AutoencoderSpec(layout, mc)
	if err != nil {
		return nil, err
	}
	devices := make([][][]float64, len(enrol))
	for i, e := range enrol {
		rows := e.Summaries
		if len(rows) == 0 {
			for _, w := range e.Windows {
				rows = append(rows, w.Dense)
			}
		}
		if _, devices[i], err = models.NormaliseSummaries(layout, pop, rows, mc); err != nil {
			return nil, fmt.Errorf("eval: %s: %w", ids[i], err)
		}
	}
	init, err := spec.InitParams(seed)
	if err != nil {
		return nil, err
	}
	params, err := fedAvg(ctx, spec, init, devices, fc, mc.Train, seed, workers, progress)
	if err != nil {
		return nil, err
	}
	return &models.Global{Population: pop, Spec: spec, Params: params}, nil
}

// keyEnrolments returns the users' ids and what each device enrols with.
func keyEnrolments(users []keyUser) ([]string, []models.Enrolment) {
	ids := make([]string, len(users))
	enrol := make([]models.Enrolment, len(users))
	for i, u := range users {
		ids[i] = u.id
		enrol[i] = models.Enrolment{Windows: u.enrol, Summaries: enrolRows(u)}
	}
	return ids, enrol
}

func enrolRows(u keyUser) [][]float64 {
	if len(u.overlap) > 0 {
		return u.overlap
	}
	rows := make([][]float64, len(u.enrol))
	for i, w := range u.enrol {
		rows[i] = w.Dense
	}
	return rows
}
