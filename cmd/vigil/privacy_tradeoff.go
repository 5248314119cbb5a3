package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/metrics"
)

// runPrivacyTradeoff is `vigil privacy tradeoff`: what each privacy budget costs in accuracy,
// measured on recorded typing through the deployable rounds.
//
//	vigil privacy tradeoff --data DIR [--epsilons 1,2,4,8,inf] [--png FILE] [--json]
func runPrivacyTradeoff(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy tradeoff", stdout)
	data := fs.String("data", "../shared/datasets/aalto-keystrokes", "directory of the Aalto keystroke data set")
	list := fs.String("epsilons", "1,2,4,8,inf", "total budgets at delta 1e-5 to evaluate, comma-separated ('inf': no noise)")
	users := fs.Int("users", 0, "evaluate only this many participants, in file name order (0: all)")
	skip := fs.Int("skip", 0, "skip this many participants first")
	clip := fs.Float64("clip", 0, "clip norm C of the population round (0: the default)")
	seed := fs.Uint64("seed", 1, "seed of every random choice")
	workers := fs.Int("workers", 0, "parallel workers (0: GOMAXPROCS)")
	pngPath := fs.String("png", "tradeoff.png", "write the plot to this PNG file (empty: none)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of the table (vigil console --tradeoff plots it)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if st, err := os.Stat(*data); err != nil || !st.IsDir() {
		return fmt.Errorf("flag -data: %s is not a readable directory", *data)
	}
	var epsilons []float64
	for _, s := range strings.Split(*list, ",") {
		e, err := parseEpsilon(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("flag -epsilons: %w", err)
		}
		epsilons = append(epsilons, e)
	}
	switch {
	case *users < 0 || *skip < 0 || *workers < 0:
		return errors.New("flags -users, -skip and -workers must not be negative")
	case *clip < 0 || math.IsNaN(*clip) || math.IsInf(*clip, 0):
		return fmt.Errorf("flag -clip: %v, want > 0", *clip)
	}
	cfg := eval.KeystrokeConfig{Dir: *data, Users: *users, Skip: *skip, Seed: *seed, Workers: *workers, Progress: evalProgress(stderr)}
	cfg.Privacy.Stats.Clip = *clip
	fmt.Fprintf(stderr, "privacy tradeoff: %s at epsilon %s\n", *data, *list)
	res, err := eval.KeystrokesTradeoff(ctx, cfg, epsilons)
	if err != nil {
		return err
	}
	if *pngPath != "" {
		if err := writeTradeoffPNG(*pngPath, res); err != nil {
			return err
		}
	}
	if *jsonOut {
		return evalWriteJSON(stdout, tradeoffJSON(res, *pngPath))
	}
	printTradeoff(stdout, res, *list, *pngPath)
	return nil
}

func writeTradeoffPNG(path string, res []*eval.KeystrokeResult) error {
	mean := metrics.TradeoffSeries{Name: "mean per-user EER"}
	pooled := metrics.TradeoffSeries{Name: "pooled EER"}
	for _, r := range res {
		o, e := r.Federated, r.Config.Privacy.Epsilon
		mean.Points = append(mean.Points, metrics.TradeoffPoint{Epsilon: e, Value: o.EERMean, Lo: o.EERMeanCI.Lo, Hi: o.EERMeanCI.Hi})
		pooled.Points = append(pooled.Points, metrics.TradeoffPoint{Epsilon: e, Value: o.EERPooled, Lo: o.EERPooledCI.Lo, Hi: o.EERPooledCI.Hi})
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	title := fmt.Sprintf("Keystrokes, %d users, L=%d, G=%d: deployable federation", res[0].Users, res[0].Config.Window, res[0].Config.Enrol)
	if err := metrics.WriteTradeoff(f, title, "EER (bootstrap 95% intervals)", mean, pooled); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("flag -png: %w", err)
	}
	return nil
}

// tradeoffJSON is the --json output, which vigil console --tradeoff plots (console.Tradeoff
// reads it). JSON has no infinity, so the unbounded budget is "inf" wherever it appears.
func tradeoffJSON(res []*eval.KeystrokeResult, png string) map[string]any {
	var rows []map[string]any
	for _, r := range res {
		o := r.Federated
		var private map[string]any
		if p := r.Private; p != nil {
			spent := any(p.EpsilonSpent)
			if math.IsInf(p.EpsilonSpent, 1) {
				spent = "inf"
			}
			private = map[string]any{
				"epsilon_spent": spent, "delta": p.Delta, "noise_multiplier": p.NoiseMultiplier, "centring_noise": p.CentringNoise,
				"clip": p.Clip, "devices": p.Devices, "fleet": p.Fleet, "m_min": p.MMin, "t_dev": p.TDev,
				"buckets": p.Buckets, "total_buckets": p.Total,
			}
		}
		rows = append(rows, map[string]any{
			"epsilon":         jsonEpsilon(r.Config.Privacy),
			"delta":           r.Config.Privacy.Delta,
			"private_rounds":  private,
			"eer_mean":        o.EERMean,
			"eer_mean_ci95":   o.EERMeanCI,
			"eer_pooled":      o.EERPooled,
			"eer_pooled_ci95": o.EERPooledCI,
			"far":             o.FAR,
			"frr":             o.FRR,
		})
	}
	alone := res[0].Alone
	return map[string]any{
		"eval":     "privacy tradeoff (keystrokes)",
		"data":     res[0].Config.Dir,
		"users":    res[0].Users,
		"seed":     res[0].Config.Seed,
		"protocol": res[0].Protocol,
		"rows":     rows,
		"alone":    map[string]any{"eer_mean": alone.EERMean, "eer_pooled": alone.EERPooled, "eer_mean_ci95": alone.EERMeanCI, "eer_pooled_ci95": alone.EERPooledCI},
		"png":      png,
	}
}

func printTradeoff(w io.Writer, res []*eval.KeystrokeResult, list, png string) {
	cfg := res[0].Config
	fmt.Fprintf(w, "vigil privacy tradeoff --data %s --epsilons %s --users %d --skip %d --seed %d\n", cfg.Dir, list, cfg.Users, cfg.Skip, cfg.Seed)
	fmt.Fprintf(w, "keystrokes, %d users, L = %d, G = %d; every device in one population round (q = 1), delta %g\n\n",
		res[0].Users, cfg.Window, cfg.Enrol, res[0].Config.Privacy.Delta)
	fmt.Fprintf(w, "%-8s %8s %6s %9s %9s %-18s %9s %-18s %7s %7s\n", "epsilon", "z", "C", "buckets", "EER mean", "95% interval", "pooled", "95% interval", "FAR", "FRR")
	row := func(name, z, c, buckets string, o eval.Outcome) {
		fmt.Fprintf(w, "%-8s %8s %6s %9s %8.2f%% [%5.2f%%, %5.2f%%] %8.2f%% [%5.2f%%, %5.2f%%] %6.2f%% %6.2f%%\n",
			name, z, c, buckets, 100*o.EERMean, 100*o.EERMeanCI.Lo, 100*o.EERMeanCI.Hi,
			100*o.EERPooled, 100*o.EERPooledCI.Lo, 100*o.EERPooledCI.Hi, 100*o.FAR, 100*o.FRR)
	}
	for _, r := range res {
		p := r.Private
		z := "-"
		if p.NoiseMultiplier > 0 {
			z = fmt.Sprintf("%.4f", p.NoiseMultiplier)
		}
		row(formatEpsilon(p.Epsilon), z, fmt.Sprintf("%g", p.Clip), fmt.Sprintf("%d", p.Buckets), r.Federated)
	}
	row("alone", "-", "-", "-", res[0].Alone)
	fmt.Fprintf(w, "\nFAR and FRR at the deployed thresholds (anomaly 0.5, placed a priori); intervals: bootstrap over users.\n")
	fmt.Fprintf(w, "protocol:\n%s\n", evalWrap(res[0].Protocol, 100))
	if png != "" {
		fmt.Fprintf(w, "plot: %s\n", png)
	}
}
