package takeover

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
)

// Run runs the takeover evaluation. The protocol, fixed in code and repeated exactly by the
// seed:
//
//   - Every selected participant's typing (all test sections in time order) is cut into
//     consecutive windows of Window keystrokes; the first Enrol usable windows enrol the
//     participant (behaviour.KeystrokeEnrolment), and the typing after them is held out.
//   - The federation (eval.Federate, as the keystroke evaluation does it): every participant's
//     device contributes the statistics of its enrolment to the population model and trains the
//     global autoencoder on it by FedAvg. Each participant's model is then fitted on their own
//     enrolment with the federation's models (behaviour.FitKeystrokes).
//   - Genuine session: the participant's held-out typing, replayed through a real guard with
//     that model as the scorer; every challenge is passed at once, as the owner would, which
//     also teaches the model. The figure is challenges (and terminations) per 1,000 genuine
//     keystrokes.
//   - Takeover sessions: Impostors other participants, drawn with the seed. Each session
//     replays the first P keystrokes of the participant's held-out typing (P drawn uniformly
//     from Window..3*Window, below the typing's length; challenges passed), then the other
//     participant's held-out typing from where the owner would have pressed the next key. The
//     figure is the number of the other participant's keystrokes until the session is
//     challenged (any tier from soft challenge up), and the share of takeovers never
//     challenged before that typing runs out.
//
// Context is constant and benign (one known device, network and place), so only behaviour
// moves trust. Every session has a guard of its own; a model that learnt from a passed
// challenge is refitted before the participant's next session, so that sessions do not
// influence each other. No held-out keystroke is used in any training.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	files, err := keystroke.AaltoFiles(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("takeover: %w", err)
	}
	if cfg.Skip >= len(files) {
		return nil, fmt.Errorf("takeover: skipping %d of %d participant files leaves none", cfg.Skip, len(files))
	}
	files = files[cfg.Skip:]
	if cfg.Users > 0 && cfg.Users < len(files) {
		files = files[:cfg.Users]
	}
	res := &Result{Config: cfg, Files: len(files), Protocol: protocol(cfg)}
	start := time.Now()
	ps, stats, err := loadParticipants(ctx, files, &cfg)
	res.Read = stats
	if err != nil {
		return res, err
	}
	fed := ps
	if cfg.Background > 0 {
		if cfg.Background > len(ps)-2 {
			return res, fmt.Errorf("takeover: %d background participants leave fewer than 2 of %d to replay", cfg.Background, len(ps))
		}
		fed, ps = ps[:cfg.Background], ps[cfg.Background:]
	}
	res.Users = len(ps)
	res.LoadTime = time.Since(start)

	start = time.Now()
	layout := keystroke.NewLayout()
	ids := make([]string, len(fed))
	enrol := make([]models.Enrolment, len(fed))
	for i, p := range fed {
		ids[i], enrol[i] = p.id, p.enrol
	}
	var global *models.Global
	if cfg.Privacy.Enabled() {
		global, res.Private, err = eval.FederatePrivately(ctx, layout, ids, enrol, cfg.Privacy, cfg.Seed, cfg.Workers)
	} else {
		global, err = eval.Federate(ctx, layout, ids, enrol, cfg.Model, cfg.Fed, cfg.Seed, cfg.Workers, cfg.progress("federate"))
	}
	if err != nil {
		return res, err
	}
	res.FederationTime = time.Since(start)

	start = time.Now()
	rp, err := newReplayer(cfg.Guard)
	if err != nil {
		return res, err
	}
	outs := make([]userRuns, len(ps))
	err = forEach(ctx, len(ps), cfg.Workers, cfg.progress("replay"), func(i int) error {
		var err error
		outs[i], err = replayUser(ctx, rp, layout, global, ps, i, &cfg)
		return err
	})
	if err != nil {
		return res, err
	}
	res.ReplayTime = time.Since(start)
	for _, p := range ps {
		res.HoldsCleared += p.holdless
	}
	summarise(res, outs)
	return res, nil
}

// userRuns are the sessions replayed for one participant.
type userRuns struct {
	genuine   genuineRun
	takeovers []takeoverRun
}

// replayUser fits participant i's model and replays their genuine session and takeovers.
func replayUser(ctx context.Context, rp *replayer, layout *models.Layout, global *models.Global, ps []participant, i int, cfg *Config) (userRuns, error) {
	var out userRuns
	p := ps[i]
	mc := cfg.Model
	mc.Train.Seed, mc.Forest.Seed = cfg.Seed+uint64(i), cfg.Seed+uint64(i)
	fit := func() (*behaviour.Scorer, error) {
		m, err := behaviour.FitKeystrokes(ctx, layout, global, p.enrol, mc)
		if err != nil {
			return nil, fmt.Errorf("takeover: participant %s: %w", p.id, err)
		}
		return behaviour.NewScorer(m)
	}
	sc, err := fit()
	if err != nil {
		return out, err
	}
	if out.genuine, err = rp.genuine(p.id+"/genuine", sc, keys(p.held)); err != nil {
		return out, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7a4e0000+uint64(i)))
	for k, j := range impostors(rng, len(ps), i, cfg.Impostors) {
		if sc.Stats().Learnt > 0 {
			// The model learnt from the last session's passed challenges: start afresh.
			if sc, err = fit(); err != nil {
				return out, err
			}
		}
		prefix := min(cfg.Window+rng.IntN(2*cfg.Window+1), len(p.held)-1)
		// The other person starts where the owner would have pressed their next key.
		own := keys(p.held)
		t, err := rp.takeover(fmt.Sprintf("%s/takeover-%d-by-%s", p.id, k+1, ps[j].id), sc, own, prefix, keys(ps[j].held), own.offset(prefix))
		if err != nil {
			return out, err
		}
		out.takeovers = append(out.takeovers, t)
	}
	return out, nil
}

// impostors draws n distinct participants other than self (all others when there are fewer).
func impostors(rng *rand.Rand, users, self, n int) []int {
	others := make([]int, 0, users-1)
	for j := 0; j < users; j++ {
		if j != self {
			others = append(others, j)
		}
	}
	rng.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
	return others[:min(n, len(others))]
}

func protocol(cfg Config) string {
	who := "every participant's device contributes"
	if cfg.Background > 0 {
		who = fmt.Sprintf("only the first %d participants' devices, which are not replayed, contribute", cfg.Background)
	}
	fed := fmt.Sprintf("Federated models as in 'vigil eval keystrokes' (plaintext simulation, which no release can ship): "+
		"%s enrolment statistics to the population model and trains the global autoencoder on its enrolment by FedAvg "+
		"(%d rounds of up to %d devices, without clipping or DP noise)", who, cfg.Fed.Rounds, cfg.Fed.PerRound)
	if p := cfg.Privacy; p.Enabled() {
		fed = fmt.Sprintf("Deployable federation as in 'vigil eval keystrokes --epsilon %g': %s bounded population "+
			"statistics in one DP round (clipped, noised on every device, total epsilon %g at delta %g); no global autoencoder",
			p.Epsilon, who, p.Epsilon, p.Delta)
	}
	return fmt.Sprintf("Each participant's keystrokes (all test sections in time order) are cut into consecutive "+
		"windows of %d; the first %d usable windows enrol the participant and the typing after them is held out. "+
		"%s; each participant's model is "+
		"fitted on their own enrolment. Sessions are replayed through a real guard (window %d, hop %d, "+
		"sessions start at %s trust) with constant, benign context, so only typing moves trust (no data set has "+
		"typing and mouse from the same people, so the replay is typing-only). Genuine: the "+
		"participant's held-out typing; every challenge is passed at once (and teaches the model). Takeover: "+
		"%d other participants drawn with the seed; the participant's first P held-out keystrokes (P uniform "+
		"in %d..%d), then the other participant's held-out typing until the session is challenged (soft "+
		"challenge or above) or that typing runs out (missed). Every session has its own guard; a model that "+
		"learnt from a passed challenge is refitted before the next session. No held-out keystroke is used in "+
		"any training.",
		cfg.Window, cfg.Enrol, fed, cfg.Window, cfg.Hop, cfg.Start,
		cfg.Impostors, cfg.Window, 3*cfg.Window)
}
