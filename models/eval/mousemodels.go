package eval

import (
	"context"
	"fmt"
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
	byUser, users, err := loadMouseTraining(ctx, cfg, &res.Read)
	if err != nil {
		return res, err
	}
	res.Users = users
	res.LoadTime = time.Since(start)

	start = time.Now()
	layout := mouse.NewLayout()
	var enrol []models.Enrolment
	enrol, res.TrainActions = mouseEnrolments(byUser, users, cfg.MaxRows, cfg.EnrolActions)
	if cfg.EnrolActions > 0 {
		res.Protocol = fmt.Sprintf("Each user's mouse model learns from the first %d actions of that user's training sessions "+
			"(%d actions in all), as the device agent enrols a user, with the user models' default training. ", cfg.EnrolActions, res.TrainActions)
	} else {
		res.Protocol = fmt.Sprintf("Each user's mouse model learns from all that user's training sessions (%d actions in all, as "+
			"'vigil eval mouse' enrols them). ", res.TrainActions)
	}
	global, private, err := mouseFederation(ctx, layout, users, enrol, cfg)
	if err != nil {
		return res, err
	}
	if res.Private = private; private != nil {
		res.Protocol += fmt.Sprintf("Deployable federation as in 'vigil eval mouse --epsilon %g': the population model from one "+
			"centring and one statistics round of a simulated fleet of %d devices (recorded user i mod %d each), clipped and "+
			"noised on every device (total epsilon %g at delta %g), no global autoencoder.",
			cfg.Privacy.Epsilon, private.Fleet, len(users), cfg.Privacy.Epsilon, cfg.Privacy.Delta)
	} else {
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
