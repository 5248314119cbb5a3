package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"sort"

	"github.com/vigilauth/vigil/guard/takeover"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
)

// runEvalTakeover replays recorded typing as sessions taken over midway by another person:
//
//	vigil eval takeover --data DIR [--users N] [--skip N] [--window 50] [--hop 5] [--enrol 5]
//	    [--impostors 5] [--start established|new] [--seed 1] [--json] [--png FILE]
func runEvalTakeover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval takeover", stdout)
	var c commonEvalFlags
	c.register(fs, "../shared/datasets/aalto-keystrokes", "")
	window := fs.Int("window", 50, "keystrokes per window (L), for enrolment and the guard")
	hop := fs.Int("hop", 0, "keystrokes between the guard's scored windows (0: window/10)")
	enrol := fs.Int("enrol", 5, "enrolment windows per participant (G)")
	users := fs.Int("users", 0, "evaluate only this many participants, in file name order (0: all)")
	skip := fs.Int("skip", 0, "skip this many participants first, in file name order")
	impostors := fs.Int("impostors", 5, "takeover sessions per participant, each by another participant")
	start := fs.String("start", string(takeover.StartEstablished), "trust sessions start at: established (a user with a long history) or new")
	rounds := fs.Int("rounds", 10, "federated averaging rounds for the global autoencoder")
	background := fs.Int("background", 0, "the first N selected participants only train the federation and are not replayed")
	var priv privacyFlags
	priv.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("eval takeover: unexpected argument %q", fs.Arg(0))
	}
	if err := c.check(); err != nil {
		return err
	}
	privacy, err := priv.config()
	if err != nil {
		return err
	}
	switch {
	case *background < 0:
		return fmt.Errorf("flag -background: %d is negative", *background)
	case *window < 10 || *window > 4096:
		return fmt.Errorf("flag -window: %d, want 10..4096", *window)
	case *hop < 0 || *hop > *window:
		return fmt.Errorf("flag -hop: %d, want 0..%d (the window)", *hop, *window)
	case *enrol < 1 || *enrol > 1000:
		return fmt.Errorf("flag -enrol: %d, want 1..1000", *enrol)
	case *users < 0:
		return fmt.Errorf("flag -users: %d is negative", *users)
	case *users == 1:
		return fmt.Errorf("flag -users: 1 participant cannot take over from another; want 0 (all) or at least 2")
	case *skip < 0:
		return fmt.Errorf("flag -skip: %d is negative", *skip)
	case *impostors < 1 || *impostors > 1000:
		return fmt.Errorf("flag -impostors: %d, want 1..1000", *impostors)
	case *start != string(takeover.StartEstablished) && *start != string(takeover.StartNew):
		return fmt.Errorf("flag -start: %q, want established or new", *start)
	case *rounds < 1 || *rounds > 1000:
		return fmt.Errorf("flag -rounds: %d, want 1..1000", *rounds)
	}
	cfg := takeover.Config{
		Dir: c.data, Window: *window, Hop: *hop, Enrol: *enrol, Users: *users, Skip: *skip, Background: *background, Privacy: privacy,
		Impostors: *impostors, Seed: c.seed, Start: takeover.Start(*start), Workers: c.workers,
		Model:    models.UserModelConfig{Scaling: models.Scaling(c.scaling)},
		Fed:      eval.FedConfig{Rounds: *rounds},
		Progress: evalProgress(stderr),
	}
	fmt.Fprintf(stderr, "eval takeover: data %s, window %d, enrol %d, %d impostors per participant, seed %d, %s\n", c.data, *window, *enrol, *impostors, c.seed, priv.describe())
	res, err := takeover.Run(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eval takeover: %w", err)
	}
	if c.png != "" {
		if err := writeTakeoverPNG(c.png, res); err != nil {
			return err
		}
	}
	if c.jsonOut {
		return evalWriteJSON(stdout, takeoverJSON(res, c))
	}
	printTakeover(stdout, res, c)
	return nil
}

func writeTakeoverPNG(path string, res *takeover.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	if err := takeover.WritePNG(f, res); err != nil {
		f.Close()
		return fmt.Errorf("flag -png: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	return nil
}

// jsonNumber is v, or nil (JSON null) when v is not a number: a quantile among missed takeovers.
func jsonNumber(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}

func takeoverJSON(res *takeover.Result, c commonEvalFlags) map[string]any {
	cfg, g, t := res.Config, res.Genuine, res.Takeover
	return map[string]any{
		"eval":                           "takeover",
		"data":                           cfg.Dir,
		"window":                         cfg.Window,
		"hop":                            cfg.Hop,
		"enrol":                          cfg.Enrol,
		"impostors_per_user":             cfg.Impostors,
		"start":                          cfg.Start,
		"seed":                           cfg.Seed,
		"skip":                           cfg.Skip,
		"users_limit":                    cfg.Users,
		"scaling":                        c.scaling,
		"fed_rounds":                     cfg.Fed.Rounds,
		"background":                     cfg.Background,
		"epsilon":                        jsonEpsilon(cfg.Privacy),
		"deployable":                     res.Private != nil,
		"private_rounds":                 res.Private,
		"protocol":                       res.Protocol,
		"users":                          res.Users,
		"median_keystrokes_to_challenge": jsonNumber(t.Median),
		"missed_takeovers":               t.MissedShare,
		"genuine_challenges_per_1000":    g.Per1000,
		"keystrokes_to_challenge": map[string]any{
			"p25": jsonNumber(t.P25), "median": jsonNumber(t.Median), "p75": jsonNumber(t.P75), "p90": jsonNumber(t.P90),
			"median_of_challenged": jsonNumber(t.MedianDetected),
		},
		"takeover":      t,
		"genuine":       g,
		"rows":          res.Read.Rows,
		"rows_kept":     res.Read.Kept,
		"dropped":       res.Read.Dropped,
		"holds_cleared": res.HoldsCleared,
		"png":           c.png,
	}
}

func printTakeover(w io.Writer, res *takeover.Result, c commonEvalFlags) {
	cfg, g, t := res.Config, res.Genuine, res.Takeover
	fmt.Fprintf(w, "vigil eval takeover --data %s --window %d --hop %d --enrol %d --impostors %d --start %s --seed %d --users %d --skip %d --background %d --rounds %d --scaling %s%s\n",
		cfg.Dir, cfg.Window, cfg.Hop, cfg.Enrol, cfg.Impostors, cfg.Start, cfg.Seed, cfg.Users, cfg.Skip, cfg.Background, cfg.Fed.Rounds, c.scaling, epsilonArg(cfg.Privacy))
	fmt.Fprintf(w, "participants %d selected, %d background, %d evaluated; %s\n", res.Files, cfg.Background, res.Users, federatedLabel(res.Private))
	printPrivateRounds(w, res.Private)
	evalPrintDropped(w, res.Read.Rows, res.Read.Kept, res.Read.Dropped)
	fmt.Fprintf(w, "held-out keystrokes replayed without a hold time (release unknown or implausible): %d\n", res.HoldsCleared)
	fmt.Fprintf(w, "protocol:\n%s\n\n", evalWrap(res.Protocol, 100))
	fmt.Fprintf(w, "takeovers %d (another participant typing %d keystrokes in all)\n", t.Sessions, t.ImpostorKeystrokes)
	fmt.Fprintf(w, "  median_keystrokes_to_challenge %s   (aim: under 100)\n", quantileText(t.Median))
	fmt.Fprintf(w, "  keystrokes to challenge: p25 %s, p75 %s, p90 %s; median of the challenged %s\n",
		quantileText(t.P25), quantileText(t.P75), quantileText(t.P90), quantileText(t.MedianDetected))
	fmt.Fprintf(w, "  missed_takeovers %.2f%% (%d never challenged)   (aim: under 2%%)\n", 100*t.MissedShare, t.Missed)
	tiers := make([]string, 0, len(t.Tiers))
	for k := range t.Tiers {
		tiers = append(tiers, k)
	}
	sort.Strings(tiers)
	fmt.Fprint(w, "  first response:")
	for _, k := range tiers {
		fmt.Fprintf(w, " %s %d", k, t.Tiers[k])
	}
	fmt.Fprintf(w, "\n  the owner's typing before the takeover: %d challenges passed, %d sessions terminated (left out)\n", t.PrefixChallenges, t.PrefixTerminated)
	fmt.Fprintf(w, "genuine sessions %d, %d keystrokes\n", g.Sessions, g.Keystrokes)
	fmt.Fprintf(w, "  genuine_challenges_per_1000 %.3f (%d challenges in %d sessions, %d terminations)   (aim: under 1)\n",
		g.Per1000, g.Challenges, g.SessionsChallenged, g.Terminations)
	fmt.Fprintf(w, "\ntime: read %v, federation %v, replay %v\n", res.LoadTime.Round(1e6), res.FederationTime.Round(1e6), res.ReplayTime.Round(1e6))
	if c.png != "" {
		fmt.Fprintf(w, "keystrokes-to-challenge curve: %s\n", c.png)
	}
}

func quantileText(v float64) string {
	if math.IsNaN(v) {
		return "never (among the missed)"
	}
	return fmt.Sprintf("%.0f", v)
}
