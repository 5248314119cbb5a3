package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/metrics"
)

func runEvalKeystrokes(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval keystrokes", stdout)
	var c commonEvalFlags
	c.register(fs, "../shared/datasets/aalto-keystrokes", "keystrokes-det.png")
	window := fs.Int("window", 50, "keystrokes per window (L)")
	enrol := fs.Int("enrol", 5, "enrolment windows per user (G)")
	users := fs.Int("users", 0, "evaluate only this many participants, in file name order (0: all)")
	skip := fs.Int("skip", 0, "skip this many participants first, in file name order")
	rounds := fs.Int("rounds", 10, "federated averaging rounds for the global autoencoder")
	background := fs.Int("background", 0, "the first N selected participants only train the federated models and are not evaluated")
	var priv privacyFlags
	priv.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArgument("eval keystrokes", fs)
	}
	if err := c.check(); err != nil {
		return err
	}
	privacy, err := priv.config()
	if err != nil {
		return err
	}
	switch {
	case *window < 10 || *window > 10000:
		return fmt.Errorf("flag -window: %d, want 10..10000", *window)
	case *enrol < 1 || *enrol > 1000:
		return fmt.Errorf("flag -enrol: %d, want 1..1000", *enrol)
	case *users < 0:
		return fmt.Errorf("flag -users: %d is negative", *users)
	case *skip < 0:
		return fmt.Errorf("flag -skip: %d is negative", *skip)
	case *background < 0:
		return fmt.Errorf("flag -background: %d is negative", *background)
	case *rounds < 1 || *rounds > 1000:
		return fmt.Errorf("flag -rounds: %d, want 1..1000", *rounds)
	}
	cfg := eval.KeystrokeConfig{
		Dir: c.data, Window: *window, Enrol: *enrol, Users: *users, Skip: *skip, Background: *background, Seed: c.seed, Workers: c.workers,
		Model:    models.UserModelConfig{Scaling: models.Scaling(c.scaling)},
		Fed:      eval.FedConfig{Rounds: *rounds},
		Privacy:  privacy,
		Progress: evalProgress(stderr),
	}
	fmt.Fprintf(stderr, "eval keystrokes: data %s, window %d, enrol %d, seed %d, %s\n", c.data, *window, *enrol, c.seed, priv.describe())
	res, err := eval.Keystrokes(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eval keystrokes: %w", err)
	}
	if c.png != "" {
		err := evalWritePNG(c.png, true, fmt.Sprintf("Keystrokes, L=%d, G=%d, %d users (pooled trials)", res.Config.Window, res.Config.Enrol, res.Users),
			metrics.Series{Name: federatedLabel(res.Private), Curve: res.Federated.Curve},
			metrics.Series{Name: "alone", Curve: res.Alone.Curve})
		if err != nil {
			return err
		}
	}
	if c.jsonOut {
		return evalWriteJSON(stdout, keystrokeJSON(res, c))
	}
	printKeystrokes(stdout, res, c)
	return nil
}

func keystrokeJSON(res *eval.KeystrokeResult, c commonEvalFlags) map[string]any {
	cfg := res.Config
	return map[string]any{
		"eval":            "keystrokes",
		"data":            cfg.Dir,
		"window":          cfg.Window,
		"enrol":           cfg.Enrol,
		"seed":            cfg.Seed,
		"skip":            cfg.Skip,
		"users_limit":     cfg.Users,
		"background":      cfg.Background,
		"scaling":         c.scaling,
		"fed_rounds":      cfg.Fed.Rounds,
		"protocol":        res.Protocol,
		"users":           res.Users,
		"genuine_trials":  res.GenuineTrials,
		"impostor_trials": res.ImpostorTrials,
		"epsilon":         jsonEpsilon(cfg.Privacy),
		"deployable":      res.Private != nil,
		"private_rounds":  res.Private,
		"eer_mean":        res.Federated.EERMean,
		"eer_pooled":      res.Federated.EERPooled,
		"eer_mean_ci95":   res.Federated.EERMeanCI,
		"eer_pooled_ci95": res.Federated.EERPooledCI,
		"far":             res.Federated.FAR,
		"frr":             res.Federated.FRR,
		"federated":       res.Federated,
		"alone":           res.Alone,
		"rows":            res.Read.Rows,
		"rows_kept":       res.Read.Kept,
		"dropped":         res.Read.Dropped,
		"png":             c.png,
	}
}

func printKeystrokes(w io.Writer, res *eval.KeystrokeResult, c commonEvalFlags) {
	cfg := res.Config
	fmt.Fprintf(w, "vigil eval keystrokes --data %s --window %d --enrol %d --seed %d --users %d --skip %d --background %d --rounds %d --scaling %s%s\n",
		cfg.Dir, cfg.Window, cfg.Enrol, cfg.Seed, cfg.Users, cfg.Skip, cfg.Background, cfg.Fed.Rounds, c.scaling, epsilonArg(cfg.Privacy))
	fmt.Fprintf(w, "participants %d selected, %d background, %d evaluated; trials: %d genuine, %d impostor\n", res.Files, res.Config.Background, res.Users, res.GenuineTrials, res.ImpostorTrials)
	evalPrintDropped(w, res.Read.Rows, res.Read.Kept, res.Read.Dropped)
	fmt.Fprintf(w, "protocol:\n%s\n\n", evalWrap(res.Protocol, 100))
	printPrivateRounds(w, res.Private)
	o := res.Federated
	fmt.Fprintf(w, "%s: EER mean %.2f%% [%.2f, %.2f], pooled %.2f%% [%.2f, %.2f] (bootstrap 95%% over users); at the deployed thresholds FAR %.2f%%, FRR %.2f%%\n\n",
		federatedLabel(res.Private), 100*o.EERMean, 100*o.EERMeanCI.Lo, 100*o.EERMeanCI.Hi, 100*o.EERPooled, 100*o.EERPooledCI.Lo, 100*o.EERPooledCI.Hi, 100*o.FAR, 100*o.FRR)
	fmt.Fprintf(w, "%-12s %-12s %10s %10s\n", "mode", "detector", "EER mean", "EER pooled")
	for _, m := range []struct {
		name string
		o    eval.Outcome
	}{{"federated", res.Federated}, {"alone", res.Alone}} {
		if m.o.Detectors == nil {
			continue
		}
		for _, d := range []string{"profile", "autoencoder", "forest", "combined"} {
			r := m.o.Detectors[d]
			fmt.Fprintf(w, "%-12s %-12s %9.2f%% %9.2f%%\n", m.name, d, 100*r.EERMean, 100*r.EERPooled)
		}
		fmt.Fprintf(w, "%-12s at the users' own thresholds: FAR %.2f%%, FRR %.2f%%\n", m.name, 100*m.o.FAR, 100*m.o.FRR)
	}
	fmt.Fprintf(w, "\ntime: read %v, federation %v, evaluation %v\n", res.LoadTime.Round(1e6), res.FederationTime.Round(1e6), res.EvalTime.Round(1e6))
	if c.png != "" {
		fmt.Fprintf(w, "DET curve: %s\n", c.png)
	}
}
