package main

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/metrics"
)

func runEvalMouse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval mouse", stdout)
	var c commonEvalFlags
	c.register(fs, "../shared/datasets/balabit-mouse", "mouse-roc.png")
	dev := fs.Bool("dev", false, "development protocol: hold out each user's last training session instead of using the test labels")
	var priv privacyFlags
	priv.register(fs)
	fleet := fs.Int("fleet", 500, "with -epsilon: the recorded users stand for a fleet of this many devices (user i mod n each), each adding its own noise")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArgument("eval mouse", fs)
	}
	if err := c.check(); err != nil {
		return err
	}
	privacy, err := priv.config()
	if err != nil {
		return err
	}
	if *fleet < 1 || *fleet > 1000000 {
		return fmt.Errorf("flag -fleet: %d, want 1..1000000", *fleet)
	}
	if privacy.Enabled() {
		privacy.Fleet = *fleet
	}
	cfg := eval.MouseConfig{
		Privacy: privacy,
		Dir:     c.data, Development: *dev, Seed: c.seed, Workers: c.workers,
		Model:    models.UserModelConfig{Scaling: models.Scaling(c.scaling)},
		Progress: evalProgress(stderr),
	}
	fmt.Fprintf(stderr, "eval mouse: data %s, seed %d, development protocol %v, %s\n", c.data, c.seed, *dev, priv.describe())
	res, err := eval.Mouse(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eval mouse: %w", err)
	}
	if c.png != "" {
		err := evalWritePNG(c.png, false, fmt.Sprintf("Mouse, %d users, %d sessions", res.Users, res.Sessions),
			metrics.Series{Name: federatedLabel(res.Private), Curve: res.Federated.Curve},
			metrics.Series{Name: "alone", Curve: res.Alone.Curve})
		if err != nil {
			return err
		}
	}
	if c.jsonOut {
		return evalWriteJSON(stdout, map[string]any{
			"eval":              "mouse",
			"data":              res.Config.Dir,
			"seed":              res.Config.Seed,
			"development":       res.Config.Development,
			"scaling":           c.scaling,
			"protocol":          res.Protocol,
			"users":             res.Users,
			"sessions":          res.Sessions,
			"genuine":           res.Genuine,
			"impostor":          res.Impostor,
			"unscored":          res.Unscored,
			"epsilon":           jsonEpsilon(res.Config.Privacy),
			"deployable":        res.Private != nil,
			"private_rounds":    res.Private,
			"auc":               res.Federated.AUC,
			"auc_ci95":          res.Federated.AUCCI,
			"eer_mean":          res.Federated.EERMean,
			"eer_pooled":        res.Federated.EERPooled,
			"user_eer":          res.Federated.UserEER,
			"federated":         res.Federated,
			"alone":             res.Alone,
			"train_actions":     res.TrainActions,
			"test_actions":      res.TestActions,
			"rows":              res.Read.Rows,
			"rows_kept":         res.Read.Kept,
			"dropped":           res.Read.Dropped,
			"segment_pause_s":   res.Config.Segment.Pause.Seconds(),
			"segment_min_pts":   res.Config.Segment.MinPoints,
			"max_rows_per_user": res.Config.MaxRows,
			"png":               c.png,
		})
	}
	fleetArg := ""
	if res.Private != nil {
		fleetArg = fmt.Sprintf(" --fleet %d", res.Private.Fleet)
	}
	fmt.Fprintf(stdout, "vigil eval mouse --data %s --seed %d --dev=%v --scaling %s%s%s\n", res.Config.Dir, res.Config.Seed, res.Config.Development, c.scaling, epsilonArg(res.Config.Privacy), fleetArg)
	fmt.Fprintf(stdout, "users %d; sessions scored %d (%d genuine, %d impostor), %d not scored (no label or no model); actions: %d training, %d test\n",
		res.Users, res.Sessions, res.Genuine, res.Impostor, res.Unscored, res.TrainActions, res.TestActions)
	fmt.Fprintf(stdout, "segmentation: pause %v, at least %d points per action\n", res.Config.Segment.Pause, res.Config.Segment.MinPoints)
	evalPrintDropped(stdout, res.Read.Rows, res.Read.Kept, res.Read.Dropped)
	fmt.Fprintf(stdout, "protocol:\n%s\n\n", evalWrap(res.Protocol, 100))
	printPrivateRounds(stdout, res.Private)
	for _, m := range []struct {
		name string
		o    eval.MouseOutcome
	}{{federatedLabel(res.Private), res.Federated}, {"alone", res.Alone}} {
		fmt.Fprintf(stdout, "%s: AUC %.4f [%.4f, %.4f] (bootstrap 95%% over sessions), EER mean over users %.2f%%, pooled EER %.2f%%; at the users' thresholds FAR %.2f%%, FRR %.2f%%\n",
			m.name, m.o.AUC, m.o.AUCCI.Lo, m.o.AUCCI.Hi, 100*m.o.EERMean, 100*m.o.EERPooled, 100*m.o.FAR, 100*m.o.FRR)
		fmt.Fprintf(stdout, "  AUC by detector: profile %.4f, autoencoder %.4f, forest %.4f, combined %.4f\n",
			m.o.Detectors["profile"], m.o.Detectors["autoencoder"], m.o.Detectors["forest"], m.o.Detectors["combined"])
		users := make([]string, 0, len(m.o.UserEER))
		for u := range m.o.UserEER {
			users = append(users, u)
		}
		sort.Strings(users)
		fmt.Fprint(stdout, "  EER per user:")
		for _, u := range users {
			fmt.Fprintf(stdout, " %s %.1f%%", u, 100*m.o.UserEER[u])
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stdout, "\ntime: read %v, federation %v, evaluation %v\n", res.LoadTime.Round(1e6), res.FederationTime.Round(1e6), res.EvalTime.Round(1e6))
	if c.png != "" {
		fmt.Fprintf(stdout, "ROC curve: %s\n", c.png)
	}
	return nil
}
