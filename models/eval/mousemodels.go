package eval

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/mouse"
)

// MouseModels are the federated user models of every user with training sessions, built as
// Mouse builds them (labelled protocol), for replays that score sessions with them elsewhere
// (package guard/takeover).
type MouseModels struct {
	// Config is the configuration with its defaults filled in.
	Config MouseConfig
	// Users lists the users in order; Models holds each one's model with the federation's
	// population (and, in the plaintext simulation, global autoencoder).
	Users  []string
	Models []*models.UserModel
	// Protocol says in words how the models were trained.
	Protocol string
	// TrainActions counts the actions the users enrolled with; Read what reading the training
	// sessions kept and dropped.
	TrainActions int
	Read         mouse.ReadStats
	// Private reports the simulated DP rounds when Config.Privacy is enabled.
	Private                                *PrivateRounds
	LoadTime, FederationTime, TrainingTime time.Duration
}

// FitMouseModels fits every user's mouse model exactly as Mouse fits the federated one on the
// labelled protocol: each user enrols on all their training sessions' actions (summaries
// sampled to MaxRows), the federation (plaintext, or deployable when cfg.Privacy is enabled)
// learns from every user's enrolment, and each user's model is fitted on their own enrolment
// with the seed Seed+i. Config.Development is not supported: the replay holds out no training
// session.
func FitMouseModels(ctx context.Context, cfg MouseConfig) (*MouseModels, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Development {
		return nil, fmt.Errorf("eval: mouse models for a replay are fitted on the labelled protocol, not the development one")
	}
	res := &MouseModels{Config: cfg}
	start := time.Now()
	trainFiles, err := mouse.BalabitSessions(cfg.Dir, "training_files")
	if err != nil {
		return nil, err
	}
	train, st, err := loadMouseSessions(ctx, trainFiles, cfg.Segment, cfg.Workers, cfg.progress("read training"))
	res.Read.Add(st)
	if err != nil {
		return res, err
	}
	byUser := map[string][]mouseSession{}
	for _, s := range train {
		byUser[s.user] = append(byUser[s.user], s)
	}
	for u := range byUser {
		res.Users = append(res.Users, u)
	}
	sort.Strings(res.Users)
	if len(res.Users) < 2 {
		return res, fmt.Errorf("eval: %d users with training sessions, need at least 2", len(res.Users))
	}
	res.LoadTime = time.Since(start)

	start = time.Now()
	layout := mouse.NewLayout()
	enrol := make([]models.Enrolment, len(res.Users))
	for i, u := range res.Users {
		var e models.Enrolment
		for _, s := range byUser[u] {
			e.Windows = append(e.Windows, s.windows...)
		}
		for _, w := range e.Windows {
			e.Summaries = append(e.Summaries, w.Dense)
		}
		e.Summaries = sample(e.Summaries, cfg.MaxRows)
		res.TrainActions += len(e.Windows)
		enrol[i] = e
	}
	res.Protocol = fmt.Sprintf("Each user's mouse model learns from all that user's training sessions (%d actions in all, as "+
		"'vigil eval mouse' enrols them). ", res.TrainActions)
	var global *models.Global
	if cfg.Privacy.Enabled() {
		pop, rep, err := privatePopulation(ctx, layout, nil, res.Users, enrol, cfg.Privacy, cfg.Seed, cfg.Workers)
		if err != nil {
			return res, err
		}
		global, res.Private = &models.Global{Population: pop}, &rep
		res.Protocol += fmt.Sprintf("Deployable federation as in 'vigil eval mouse --epsilon %g': the population model from one "+
			"centring and one statistics round of a simulated fleet of %d devices (recorded user i mod %d each), clipped and "+
			"noised on every device (total epsilon %g at delta %g), no global autoencoder.",
			cfg.Privacy.Epsilon, rep.Fleet, len(res.Users), cfg.Privacy.Epsilon, cfg.Privacy.Delta)
	} else {
		if global, err = federateEnrolments(ctx, layout, res.Users, enrol, cfg.Model, cfg.Fed, cfg.Seed, cfg.Workers, cfg.progress("federate")); err != nil {
			return res, err
		}
		res.Protocol += fmt.Sprintf("Federated models as in 'vigil eval mouse' (plaintext simulation, which no release can ship): "+
			"the population model is the sum of every user's training statistics and the global autoencoder is trained by "+
			"FedAvg (%d rounds) on every user's training actions, without clipping or DP noise.", cfg.Fed.Rounds)
	}
	res.FederationTime = time.Since(start)

	start = time.Now()
	res.Models = make([]*models.UserModel, len(res.Users))
	err = forEach(ctx, len(res.Users), cfg.Workers, cfg.progress("train"), func(i int) error {
		mc := cfg.Model
		mc.Train.Seed, mc.Forest.Seed = cfg.Seed+uint64(i), cfg.Seed+uint64(i)
		m, err := models.FitUserModel(ctx, layout, global, enrol[i], mc)
		if err != nil {
			return fmt.Errorf("eval: %s: %w", res.Users[i], err)
		}
		res.Models[i] = m
		return nil
	})
	if err != nil {
		return res, err
	}
	res.TrainingTime = time.Since(start)
	return res, nil
}
