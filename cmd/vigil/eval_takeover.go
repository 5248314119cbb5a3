package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/takeover"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
)

// runEvalTakeover replays recorded typing, or recorded mouse movement, as sessions taken over
// midway by another person. The data directory decides which: the Aalto keystroke layout
// replays typing, the Balabit mouse layout (training_files/, test_files/, public_labels.csv)
// replays mouse movement alone:
//
//	vigil eval takeover --data DIR [--users N] [--skip N] [--window 50] [--hop 5] [--enrol 5]
//	    [--impostors 5] [--start established|new] [--seed 1] [--json] [--png FILE]
//	vigil eval takeover --data BALABIT_DIR [--epsilon E] [--fleet 500] [--impostors N]
//	    [--mouse-window 1200] [--mouse-hop 300] [--enrol-actions N] [--start established|new] [--seed 1]
//	    [--json] [--png FILE]
func runEvalTakeover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval takeover", stdout)
	var c commonEvalFlags
	c.register(fs, "../shared/datasets/aalto-keystrokes", "")
	fs.Lookup("data").Usage = "directory of the data set: Aalto keystroke files (*_keystrokes.txt[.gz]) replay typing; " +
		"the Balabit mouse layout (training_files/, test_files/, public_labels.csv) replays mouse movement alone, " +
		"the data set's illegal test sessions taking over the account"
	def := guard.DefaultConfig()
	mouseWindow := fs.Int("mouse-window", 0, fmt.Sprintf("mouse data: pointer events per scored window of the guard (0: the guard's default, %d)", def.MouseWindow))
	mouseHop := fs.Int("mouse-hop", 0, fmt.Sprintf("mouse data: pointer events between the guard's scored windows (0: the guard's default, %d)", def.MouseHop))
	enrolActions := fs.Int("enrol-actions", 0, "mouse data: enrol each user on their first N training actions with the user models' "+
		"default training, as the device agent does (its default 100); 0: every training action, as 'vigil eval mouse'")
	fleet := fs.Int("fleet", 500, "mouse data with -epsilon: the recorded users stand for a fleet of this many devices, as in 'vigil eval mouse'")
	window := fs.Int("window", 50, "keystrokes per window (L), for enrolment and the guard")
	hop := fs.Int("hop", 0, "keystrokes between the guard's scored windows (0: window/10)")
	enrol := fs.Int("enrol", 5, "enrolment windows per participant (G)")
	users := fs.Int("users", 0, "evaluate only this many participants, in file name order (0: all)")
	skip := fs.Int("skip", 0, "skip this many participants first, in file name order")
	impostors := fs.Int("impostors", 5, "takeover sessions per participant, each by another participant (mouse data: cross-user "+
		"takeovers per user, every other user unless set)")
	start := fs.String("start", string(takeover.StartEstablished), "trust sessions start at: established (a user with a long history) or new")
	rounds := fs.Int("rounds", 10, "federated averaging rounds for the global autoencoder")
	background := fs.Int("background", 0, "the first N selected participants only train the federation and are not replayed")
	var priv privacyFlags
	priv.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArgument("eval takeover", fs)
	}
	if err := c.check(); err != nil {
		return err
	}
	privacy, err := priv.config()
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if isBalabit(c.data) {
		for _, name := range []string{"window", "hop", "enrol", "users", "skip", "background"} {
			if set[name] {
				return fmt.Errorf("flag -%s: typing only; %s holds the Balabit mouse data", name, c.data)
			}
		}
		imp := 0 // every other user
		if set["impostors"] {
			imp = *impostors
		}
		switch {
		case set["impostors"] && (imp < 1 || imp > 1000):
			return fmt.Errorf("flag -impostors: %d, want 1..1000", imp)
		case *start != string(takeover.StartEstablished) && *start != string(takeover.StartNew):
			return fmt.Errorf("flag -start: %q, want established or new", *start)
		case *rounds < 1 || *rounds > 1000:
			return fmt.Errorf("flag -rounds: %d, want 1..1000", *rounds)
		case *fleet < 1 || *fleet > 1000000:
			return fmt.Errorf("flag -fleet: %d, want 1..1000000", *fleet)
		case *mouseWindow < 0 || *mouseWindow > 4096:
			return fmt.Errorf("flag -mouse-window: %d, want 0 (default) or up to 4096", *mouseWindow)
		case *mouseHop < 0 || *mouseHop > cmp.Or(*mouseWindow, def.MouseWindow):
			return fmt.Errorf("flag -mouse-hop: %d, want 0 (default) or up to the window", *mouseHop)
		case *enrolActions < 0 || *enrolActions > 1000000:
			return fmt.Errorf("flag -enrol-actions: %d, want 0 (every action) or up to 1000000", *enrolActions)
		}
		if privacy.Enabled() {
			privacy.Fleet = *fleet
		}
		return runEvalMouseTakeover(ctx, takeover.MouseConfig{
			Dir: c.data, Impostors: imp, Seed: c.seed, Start: takeover.Start(*start), Workers: c.workers, EnrolActions: *enrolActions,
			Guard:   guard.Config{MouseWindow: *mouseWindow, MouseHop: *mouseHop},
			Model:   models.UserModelConfig{Scaling: models.Scaling(c.scaling)},
			Fed:     eval.FedConfig{Rounds: *rounds},
			Privacy: privacy, Progress: evalProgress(stderr),
		}, c, priv, stdout, stderr)
	}
	for _, name := range []string{"fleet", "mouse-window", "mouse-hop", "enrol-actions"} {
		if set[name] {
			return fmt.Errorf("flag -%s: mouse data only; %s is not the Balabit layout", name, c.data)
		}
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
	return writePNGFile(path, func(w io.Writer) error { return takeover.WritePNG(w, res) })
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

// isBalabit reports whether dir is laid out as the Balabit mouse data set.
func isBalabit(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "training_files"))
	if err != nil || !st.IsDir() {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "public_labels.csv"))
	return err == nil
}

// runEvalMouseTakeover is eval takeover on the Balabit mouse data: mouse movement alone.
func runEvalMouseTakeover(ctx context.Context, cfg takeover.MouseConfig, c commonEvalFlags, priv privacyFlags, stdout, stderr io.Writer) error {
	imp := "every other user"
	if cfg.Impostors > 0 {
		imp = fmt.Sprintf("%d other users", cfg.Impostors)
	}
	fmt.Fprintf(stderr, "eval takeover: mouse data %s, cross-user takeovers by %s, seed %d, %s\n", c.data, imp, c.seed, priv.describe())
	res, err := takeover.RunMouse(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eval takeover: %w", err)
	}
	if c.png != "" {
		if err := writePNGFile(c.png, func(w io.Writer) error { return takeover.WriteMousePNG(w, res) }); err != nil {
			return err
		}
	}
	if c.jsonOut {
		return evalWriteJSON(stdout, mouseTakeoverJSON(res, c))
	}
	printMouseTakeover(stdout, res, c)
	return nil
}

func writePNGFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("flag -png: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	return nil
}

func quantilesJSON(q takeover.Quantiles) map[string]any {
	return map[string]any{"p25": jsonNumber(q.P25), "median": jsonNumber(q.Median), "p75": jsonNumber(q.P75), "p90": jsonNumber(q.P90),
		"median_of_challenged": jsonNumber(q.MedianDetected)}
}

func mouseTakeoversJSON(t takeover.MouseTakeovers) map[string]any {
	return map[string]any{
		"sessions":                       t.Sessions,
		"missed":                         t.Missed,
		"missed_share":                   t.MissedShare,
		"actions_to_challenge":           quantilesJSON(t.Actions),
		"seconds_to_challenge":           quantilesJSON(t.Seconds),
		"mouse_use_seconds_to_challenge": quantilesJSON(t.UseSeconds),
		"tiers":                          t.Tiers,
		"prefix_challenges":              t.PrefixChallenges,
		"prefix_terminated":              t.PrefixTerminated,
		"impostor_events":                t.ImpostorEvents,
		"impostor_actions":               t.ImpostorActions,
		"impostor_hours":                 t.ImpostorHours,
	}
}

func mouseTakeoverJSON(res *takeover.MouseResult, c commonEvalFlags) map[string]any {
	cfg, g := res.Config, res.Genuine
	fleet := 0
	if res.Private != nil {
		fleet = res.Private.Fleet
	}
	return map[string]any{
		"eval":                                "takeover",
		"modality":                            "mouse",
		"data":                                cfg.Dir,
		"impostors_per_user":                  cfg.Impostors,
		"start":                               cfg.Start,
		"seed":                                cfg.Seed,
		"scaling":                             c.scaling,
		"fed_rounds":                          cfg.Fed.Rounds,
		"mouse_window":                        cfg.Guard.MouseWindow,
		"mouse_hop":                           cfg.Guard.MouseHop,
		"epsilon":                             jsonEpsilon(cfg.Privacy),
		"fleet":                               fleet,
		"deployable":                          res.Private != nil,
		"federation":                          federatedLabel(res.Private),
		"private_rounds":                      res.Private,
		"protocol":                            res.Protocol,
		"users":                               res.Users,
		"train_actions":                       res.TrainActions,
		"genuine_challenges_per_hour":         g.PerHour,
		"genuine_challenges_per_1000_actions": g.Per1000,
		"median_actions_to_challenge":         jsonNumber(res.Account.Actions.Median),
		"median_seconds_to_challenge":         jsonNumber(res.Account.Seconds.Median),
		"missed_takeovers":                    res.Account.MissedShare,
		"genuine":                             g,
		"account_takeovers":                   mouseTakeoversJSON(res.Account),
		"cross_user_takeovers":                mouseTakeoversJSON(res.CrossUser),
		"control_no_takeover":                 mouseTakeoversJSON(res.Control),
		"rows":                                res.Read.Rows,
		"rows_kept":                           res.Read.Kept,
		"dropped":                             res.Read.Dropped,
		"png":                                 c.png,
	}
}

func printMouseTakeover(w io.Writer, res *takeover.MouseResult, c commonEvalFlags) {
	cfg, g := res.Config, res.Genuine
	imp, fleet := "", ""
	if cfg.Impostors > 0 {
		imp = fmt.Sprintf(" --impostors %d", cfg.Impostors)
	}
	if res.Private != nil {
		fleet = fmt.Sprintf(" --fleet %d", res.Private.Fleet)
	}
	fmt.Fprintf(w, "vigil eval takeover --data %s%s --mouse-window %d --mouse-hop %d --start %s --seed %d --rounds %d --scaling %s%s%s\n",
		cfg.Dir, imp, cfg.Guard.MouseWindow, cfg.Guard.MouseHop, cfg.Start, cfg.Seed, cfg.Fed.Rounds, c.scaling, epsilonArg(cfg.Privacy), fleet)
	fmt.Fprintf(w, "mouse takeover replay (Balabit layout: mouse movement alone); users %d, enrolled on %d training actions; %s\n",
		res.Users, res.TrainActions, federatedLabel(res.Private))
	printPrivateRounds(w, res.Private)
	evalPrintDropped(w, res.Read.Rows, res.Read.Kept, res.Read.Dropped)
	fmt.Fprintf(w, "protocol:\n%s\n\n", evalWrap(res.Protocol, 100))
	for _, k := range []struct {
		name    string
		t       takeover.MouseTakeovers
		control bool
	}{
		{"account takeovers (the data set's illegal test sessions: other people on the user's account)", res.Account, false},
		{"cross-user takeovers (another user's legal test session)", res.CrossUser, false},
		{"control, no takeover (another of the owner's own legal test sessions in the impostor's place: what chance gives)", res.Control, true},
	} {
		t := k.t
		who := "the impostors'"
		if k.control {
			who = "the owner's"
		}
		fmt.Fprintf(w, "%s: %d (%s sessions hold %d actions, %d pointer events, %.2f h of mouse use)\n",
			k.name, t.Sessions, who, t.ImpostorActions, t.ImpostorEvents, t.ImpostorHours)
		for _, q := range []struct {
			name string
			q    takeover.Quantiles
		}{{"actions", t.Actions}, {"seconds", t.Seconds}, {"seconds of mouse use", t.UseSeconds}} {
			fmt.Fprintf(w, "  %s to challenge: median %s, p25 %s, p75 %s, p90 %s; median of the challenged %s\n", q.name,
				quantileText(q.q.Median), quantileText(q.q.P25), quantileText(q.q.P75), quantileText(q.q.P90), quantileText(q.q.MedianDetected))
		}
		if k.control {
			fmt.Fprintf(w, "  never challenged %.2f%% (%d of %d; their sessions hold a median of %s actions)\n",
				100*t.MissedShare, t.Missed, t.Sessions, quantileText(t.MissedActions))
		} else {
			fmt.Fprintf(w, "  missed_takeovers %.2f%% (%d of %d never challenged before the impostor's movement ran out; their sessions hold a median of %s actions)\n",
				100*t.MissedShare, t.Missed, t.Sessions, quantileText(t.MissedActions))
		}
		fmt.Fprintf(w, "  first response:%s\n", tiersText(t.Tiers))
		fmt.Fprintf(w, "  the owner's movement before the switch: %d challenges passed, %d sessions terminated (left out)\n", t.PrefixChallenges, t.PrefixTerminated)
	}
	fmt.Fprintf(w, "genuine sessions %d (legal test sessions): %d actions, %d pointer events, %.2f h of mouse use\n", g.Sessions, g.Actions, g.Events, g.Hours)
	fmt.Fprintf(w, "  genuine_challenges_per_hour %.2f, per_1000_actions %.2f (%d challenges, %d of %d sessions challenged, %d terminations)\n",
		g.PerHour, g.Per1000, g.Challenges, g.SessionsChallenged, g.Sessions, g.Terminations)
	fmt.Fprintf(w, "\ntime: read %v, federation %v, training %v, replay %v\n", res.LoadTime.Round(1e6), res.FederationTime.Round(1e6), res.TrainingTime.Round(1e6), res.ReplayTime.Round(1e6))
	if c.png != "" {
		fmt.Fprintf(w, "takeovers-challenged curves: %s\n", c.png)
	}
}

func tiersText(tiers map[string]int) string {
	names := make([]string, 0, len(tiers))
	for k := range tiers {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, " %s %d", k, tiers[k])
	}
	return b.String()
}
