package eval

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/metrics"
	"github.com/vigilauth/vigil/models/mouse"
)

// MouseConfig sets a mouse evaluation. The zero value of every field but Dir gives the default.
type MouseConfig struct {
	// Dir holds training_files/, test_files/ and public_labels.csv as the Balabit data does.
	Dir string
	// Development evaluates without the test labels: each user's last training session is held
	// out and cut into pseudo-sessions of DevActions actions, scored against every user's model.
	// Settings were tuned this way, never on the labelled test sessions.
	Development bool
	DevActions  int
	// Seed fixes every random choice.
	Seed uint64
	// Workers bounds the parallelism (default GOMAXPROCS).
	Workers int
	// Segment sets how sessions are cut into actions.
	Segment mouse.SegmentConfig
	// MaxRows bounds the action summaries the autoencoder and forest learn from per user
	// (default 3000, evenly spaced over the training data); the profile learns from all.
	MaxRows int
	// EnrolActions, when positive, enrols each user on the first EnrolActions actions of their
	// training sessions only, as the device agent enrols (agent.Config.MouseEnrolActions), and
	// the user models keep models.UserModelConfig's training defaults as the agent's do; 0
	// enrols every training action.
	EnrolActions int
	// Model configures the user models (defaults as models.UserModelConfig, but 20 epochs with
	// batches of 64 unless EnrolActions is set); Fed the federated training of the global
	// autoencoder.
	Model models.UserModelConfig
	Fed   FedConfig
	// Privacy, when enabled, replaces the plaintext federation by the deployable one, as for
	// keystrokes: the population model from DP rounds, no global autoencoder. Its Fleet
	// defaults to 500: the data set's 10 users stand for a fleet of 500 devices (see
	// PrivacyConfig.Fleet), since no round of 10 devices outweighs its noise; its clip to 100.
	Privacy PrivacyConfig
	// Progress, when set, is told of progress through each stage.
	Progress func(stage string, done, total int) `json:"-"`
}

func (c *MouseConfig) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("eval: no data directory")
	}
	if c.DevActions == 0 {
		c.DevActions = 50
	}
	if c.MaxRows == 0 {
		c.MaxRows = 3000
	}
	if c.Model.Train.Epochs == 0 && c.EnrolActions == 0 {
		c.Model.Train.Epochs = 20
	}
	if c.Model.Train.BatchSize == 0 && c.EnrolActions == 0 {
		c.Model.Train.BatchSize = 64
	}
	if c.DevActions < 1 || c.MaxRows < 2 || c.EnrolActions < 0 {
		return fmt.Errorf("eval: dev actions %d, max rows %d or enrolment actions %d out of range", c.DevActions, c.MaxRows, c.EnrolActions)
	}
	var err error
	if c.Model, err = c.Model.WithDefaults(); err != nil {
		return err
	}
	if c.Segment, err = c.Segment.WithDefaults(); err != nil {
		return err
	}
	if c.Fed.Rounds == 0 {
		c.Fed.Rounds = 10
	}
	if c.Fed.PerRound == 0 {
		c.Fed.PerRound = 10
	}
	if c.Fed.LocalEpochs == 0 {
		c.Fed.LocalEpochs = 2
	}
	if c.Privacy.Enabled() && c.Privacy.Fleet == 0 {
		c.Privacy.Fleet = 500
	}
	if c.Privacy.Enabled() && c.Privacy.Stats.Clip == 0 {
		// Every device has many events in nearly every one of the layout's ~800 buckets, and
		// describing them in the reference's scales takes more norm than 80, at which devices
		// describe about half of them; the noise a larger clip brings is small against a fleet
		// of hundreds. Development protocol at epsilon 8: AUC 0.920, 0.928, 0.924 and 0.912 at
		// clips 80, 100, 120 and 160.
		c.Privacy.Stats.Clip = 100
	}
	if err := c.Privacy.validate(); err != nil {
		return err
	}
	return c.Fed.validate()
}

func (c *MouseConfig) progress(stage string) func(done, total int) {
	if c.Progress == nil {
		return nil
	}
	return func(done, total int) { c.Progress(stage, done, total) }
}

// MouseResult is the outcome of a mouse evaluation.
type MouseResult struct {
	Config   MouseConfig
	Protocol string
	// Users is the number of user models; Sessions the number of scored test sessions, of
	// which Genuine by the account's owner and Impostor by someone else; Unscored counts test
	// sessions without a label or whose user has no training sessions, which are not scored.
	Users, Sessions, Genuine, Impostor, Unscored int
	// TrainActions and TestActions count the actions (windows) used.
	TrainActions, TestActions int
	// Read counts rows read and kept, and what was dropped, by reason (rows and actions).
	Read mouse.ReadStats
	// Federated and Alone are the results with and without the federation's models.
	Federated, Alone                   MouseOutcome
	LoadTime, FederationTime, EvalTime time.Duration
	// Private reports the simulated DP rounds when Config.Privacy is enabled.
	Private *PrivateRounds `json:",omitempty"`
}

// MouseOutcome is the result of one mode of a mouse evaluation.
type MouseOutcome struct {
	// AUCCI is a bootstrap 95% interval of AUC over sessions.
	AUCCI Interval `json:"auc_ci95"`
	// AUC is the area under the ROC of all scored sessions together.
	AUC float64 `json:"auc"`
	// EERMean is the mean of UserEER; EERPooled the EER of all sessions together.
	EERMean   float64            `json:"eer_mean"`
	EERPooled float64            `json:"eer_pooled"`
	UserEER   map[string]float64 `json:"user_eer"`
	// Detectors holds the AUC of each detector's session scores on its own.
	Detectors map[string]float64 `json:"detector_auc"`
	// FAR and FRR are the shares of impostor sessions accepted and genuine sessions rejected at
	// the users' own thresholds.
	FAR   float64       `json:"far_at_user_threshold"`
	FRR   float64       `json:"frr_at_user_threshold"`
	Curve metrics.Curve `json:"-"`
	// Fitted is the threshold placement fitted to this run's session scores (how the defaults
	// were set, on the development protocol), and FittedEER the pooled EER it gives.
	Fitted    models.ThresholdConfig `json:"-"`
	FittedEER float64                `json:"-"`
}

// mouseTrial is one scored session.
type mouseTrial struct {
	user     string
	impostor bool
	score    [numModes]float64
	detector [numModes][numDetectors]float64 // session means of each detector's scores
	level    [numModes]float64               // the user model's enrolment level
}

// Mouse runs the mouse evaluation: per user, learn from that user's training sessions only;
// score every labelled test session recorded under the user's account by the mean, over its
// actions, of the combined score relative to the user's threshold.
func Mouse(ctx context.Context, cfg MouseConfig) (*MouseResult, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	res := &MouseResult{Config: cfg}
	start := time.Now()
	byUser, users, err := loadMouseTraining(ctx, cfg, &res.Read)
	if err != nil {
		return res, err
	}

	var tests []mouseSession
	labels := map[string]bool{}
	if cfg.Development {
		tests = holdOut(byUser, users, cfg.DevActions)
		res.Protocol = fmt.Sprintf("Development protocol (no test labels used): each user's last training session is held out "+
			"and cut into pseudo-sessions of %d actions; every user model learns from the user's other training sessions and "+
			"scores every pseudo-session (its own user's: genuine; other users': impostor).", cfg.DevActions)
	} else {
		testFiles, err := mouse.BalabitSessions(cfg.Dir, "test_files")
		if err != nil {
			return res, err
		}
		if labels, err = mouse.BalabitLabels(cfg.Dir); err != nil {
			return res, err
		}
		var labelled []mouse.Session
		for _, s := range testFiles {
			if _, ok := labels[s.Name]; ok && byUser[s.User] != nil {
				labelled = append(labelled, s)
			} else {
				res.Unscored++
			}
		}
		var st mouse.ReadStats
		if tests, st, err = loadMouseSessions(ctx, labelled, cfg.Segment, cfg.Workers, cfg.progress("read test")); err != nil {
			return res, err
		}
		res.Read.Add(st)
		res.Protocol = "Each user model learns from that user's training sessions only; each labelled test session is scored " +
			"by the model of the account it was recorded under, as the mean over its actions of the combined score relative " +
			"to the user's threshold; is_illegal = 1 marks impostor sessions. Federated: the population model is the sum of " +
			"every user's training statistics and the global autoencoder is trained by FedAvg on every user's training " +
			"actions (plaintext simulation without DP noise)."
	}
	res.Users = len(users)
	res.LoadTime = time.Since(start)

	start = time.Now()
	layout := mouse.NewLayout()
	var enrol []models.Enrolment
	enrol, res.TrainActions = mouseEnrolments(byUser, users, cfg.MaxRows, cfg.EnrolActions)
	global, private, err := mouseFederation(ctx, layout, users, enrol, cfg)
	if err != nil {
		return res, err
	}
	if res.Private = private; private != nil {
		res.Protocol += fmt.Sprintf(" Deployable federation instead: the population model from one centring and one statistics round "+
			"of a simulated fleet of %d devices (recorded user i mod %d each), clipped and noised on every device, "+
			"no global autoencoder.", private.Fleet, len(users))
	}
	res.FederationTime = time.Since(start)

	start = time.Now()
	modelsByUser := make([][numModes]*models.UserModel, len(users))
	err = forEach(ctx, len(users), cfg.Workers, cfg.progress("train"), func(i int) error {
		mc := cfg.Model
		mc.Train.Seed, mc.Forest.Seed = cfg.Seed+uint64(i), cfg.Seed+uint64(i)
		for mode, g := range [numModes]*models.Global{modeFederated: global, modeAlone: nil} {
			m, err := models.FitUserModel(ctx, layout, g, enrol[i], mc)
			if err != nil {
				return fmt.Errorf("eval: %s: %w", users[i], err)
			}
			modelsByUser[i][mode] = m
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	userIndex := map[string]int{}
	for i, u := range users {
		userIndex[u] = i
	}
	var trials []mouseTrial
	for _, s := range tests {
		if len(s.windows) == 0 {
			res.Read.Drop("test session without actions", 1)
			continue
		}
		res.TestActions += len(s.windows)
		if cfg.Development {
			// A pseudo-session is scored by every user's model: genuine for its own user's.
			for i, u := range users {
				dt := mouseTrial{user: u, impostor: u != s.user}
				for mode := range dt.score {
					m := modelsByUser[i][mode]
					dt.score[mode], dt.detector[mode], dt.level[mode] = sessionScore(m, s.windows), detectorMeans(m, s.windows), m.EnrolmentLevel()
				}
				trials = append(trials, dt)
			}
			continue
		}
		t := mouseTrial{user: s.user, impostor: labels[s.name]}
		for mode := range t.score {
			m := modelsByUser[userIndex[s.user]][mode]
			t.score[mode], t.detector[mode], t.level[mode] = sessionScore(m, s.windows), detectorMeans(m, s.windows), m.EnrolmentLevel()
		}
		trials = append(trials, t)
	}
	res.EvalTime = time.Since(start)
	for _, t := range trials {
		res.Sessions++
		if t.impostor {
			res.Impostor++
		} else {
			res.Genuine++
		}
	}
	if res.Federated, err = mouseOutcome(trials, modeFederated); err != nil {
		return res, err
	}
	if res.Alone, err = mouseOutcome(trials, modeAlone); err != nil {
		return res, err
	}
	return res, nil
}

// loadMouseTraining reads the training sessions and groups them by user, the users sorted; it
// adds what reading kept and dropped to read.
func loadMouseTraining(ctx context.Context, cfg MouseConfig, read *mouse.ReadStats) (map[string][]mouseSession, []string, error) {
	trainFiles, err := mouse.BalabitSessions(cfg.Dir, "training_files")
	if err != nil {
		return nil, nil, err
	}
	train, st, err := loadMouseSessions(ctx, trainFiles, cfg.Segment, cfg.Workers, cfg.progress("read training"))
	read.Add(st)
	if err != nil {
		return nil, nil, err
	}
	byUser := map[string][]mouseSession{}
	for _, s := range train {
		byUser[s.user] = append(byUser[s.user], s)
	}
	users := slices.Sorted(maps.Keys(byUser))
	if len(users) < 2 {
		return nil, nil, fmt.Errorf("eval: %d users with training sessions, need at least 2", len(users))
	}
	return byUser, users, nil
}

// mouseEnrolments enrols each user on the actions of their sessions in byUser (the first
// limit of them if limit > 0), with the summaries sampled to maxRows, and returns the
// enrolments and the actions they hold.
func mouseEnrolments(byUser map[string][]mouseSession, users []string, maxRows, limit int) ([]models.Enrolment, int) {
	enrol := make([]models.Enrolment, len(users))
	actions := 0
	for i, u := range users {
		var e models.Enrolment
		for _, s := range byUser[u] {
			e.Windows = append(e.Windows, s.windows...)
		}
		if limit > 0 {
			e.Windows = e.Windows[:min(limit, len(e.Windows))]
		}
		for _, w := range e.Windows {
			e.Summaries = append(e.Summaries, w.Dense)
		}
		e.Summaries = sample(e.Summaries, maxRows)
		actions += len(e.Windows)
		enrol[i] = e
	}
	return enrol, actions
}

// mouseFederation is what the federation gives the users' mouse models: with cfg.Privacy
// enabled the population from the simulated DP rounds (the layout has no public centres: a
// centring round learns them, see privatePopulation), reported in the PrivateRounds; otherwise
// the plaintext simulation's population and global autoencoder, and nil.
func mouseFederation(ctx context.Context, layout *models.Layout, users []string, enrol []models.Enrolment, cfg MouseConfig) (*models.Global, *PrivateRounds, error) {
	if !cfg.Privacy.Enabled() {
		global, err := federateEnrolments(ctx, layout, users, enrol, cfg.Model, cfg.Fed, cfg.Seed, cfg.Workers, cfg.progress("federate"))
		return global, nil, err
	}
	pop, rep, err := privatePopulation(ctx, layout, nil, users, enrol, cfg.Privacy, cfg.Seed, cfg.Workers)
	if err != nil {
		return nil, nil, err
	}
	return &models.Global{Population: pop}, &rep, nil
}
