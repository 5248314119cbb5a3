package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/metrics"
)

func runEvalMouse(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval mouse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c commonEvalFlags
	c.register(fs, "../shared/datasets/balabit-mouse", "mouse-roc.png")
	dev := fs.Bool("dev", false, "development protocol: hold out each user's last training session instead of using the test labels")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("eval mouse: unexpected argument %q", fs.Arg(0))
	}
	if err := c.check(); err != nil {
		return err
	}
	cfg := eval.MouseConfig{
		Dir: c.data, Development: *dev, Seed: c.seed, Workers: c.workers,
		Model:    models.UserModelConfig{Scaling: models.Scaling(c.scaling)},
		Progress: evalProgress(stderr),
	}
	fmt.Fprintf(stderr, "eval mouse: data %s, seed %d, development protocol %v\n", c.data, c.seed, *dev)
	res, err := eval.Mouse(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eval mouse: %w", err)
	}
	if c.png != "" {
		err := evalWritePNG(c.png, false, fmt.Sprintf("Mouse, %d users, %d sessions", res.Users, res.Sessions),
			metrics.Series{Name: "federated", Curve: res.Federated.Curve},
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
			"auc":               res.Federated.AUC,
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
	fmt.Fprintf(stdout, "vigil eval mouse --data %s --seed %d --dev=%v --scaling %s\n", res.Config.Dir, res.Config.Seed, res.Config.Development, c.scaling)
	fmt.Fprintf(stdout, "users %d; sessions scored %d (%d genuine, %d impostor), %d not scored (no label or no model); actions: %d training, %d test\n",
		res.Users, res.Sessions, res.Genuine, res.Impostor, res.Unscored, res.TrainActions, res.TestActions)
	fmt.Fprintf(stdout, "segmentation: pause %v, at least %d points per action\n", res.Config.Segment.Pause, res.Config.Segment.MinPoints)
	evalPrintDropped(stdout, res.Read.Rows, res.Read.Kept, res.Read.Dropped)
	fmt.Fprintf(stdout, "protocol:\n%s\n\n", evalWrap(res.Protocol, 100))
	for _, m := range []struct {
		name string
		o    eval.MouseOutcome
	}{{"federated", res.Federated}, {"alone", res.Alone}} {
		fmt.Fprintf(stdout, "%s: AUC %.4f, EER mean over users %.2f%%, pooled EER %.2f%%; at the users' thresholds FAR %.2f%%, FRR %.2f%%\n",
			m.name, m.o.AUC, 100*m.o.EERMean, 100*m.o.EERPooled, 100*m.o.FAR, 100*m.o.FRR)
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
