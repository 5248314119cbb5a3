package main

import (
	"context"
	"fmt"
	"io"
	"math"

	"github.com/vigilauth/vigil/models/eval"
)

// runEvalFedUV measures FedUV (a federated embedding network, one class per device) on the
// keystroke evaluation's users, split and trials (issue 13's experiment; eval.FedUV):
//
//	vigil eval feduv --data DIR --epsilon E|inf --rounds R [--clip C] [--fuse] [--json]
func runEvalFedUV(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("eval feduv", stdout)
	data := fs.String("data", "../shared/datasets/aalto-keystrokes", "directory of the data set")
	seed := fs.Uint64("seed", 1, "seed of every random choice")
	workers := fs.Int("workers", 0, "parallel workers (0: GOMAXPROCS)")
	jsonOut := fs.Bool("json", false, "print one JSON object instead of text")
	users := fs.Int("users", 0, "only this many participants, in file name order (0: all)")
	skip := fs.Int("skip", 0, "skip this many participants first, in file name order")
	epsilon := fs.String("epsilon", "inf", "total epsilon of all rounds at delta 1e-5 ('inf': plaintext FedAvg, no clipping or noise)")
	rounds := fs.Int("rounds", 100, "federated rounds (every device in every round)")
	steps := fs.Int("local-steps", 5, "local full-batch gradient steps per round")
	lr := fs.Float64("lr", 0.5, "local learning rate")
	serverLR := fs.Float64("server-lr", 1, "server learning rate on the averaged delta")
	clip := fs.Float64("clip", 0.1, "clip norm C of each device's delta (private rounds only)")
	hidden := fs.Int("hidden", 64, "hidden width")
	dim := fs.Int("dim", 64, "embedding and codeword length")
	margin := fs.Float64("margin", 1, "hinge margin on the cosine to the codeword")
	fuse := fs.Bool("fuse", false, "also score the deployed models (population round at --fuse-epsilon) and fuse")
	fuseEps := fs.String("fuse-epsilon", "", "epsilon of the deployed population round for --fuse (default: --epsilon)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return unexpectedArgument("eval feduv", fs)
	}
	eps, err := parseEpsilon(*epsilon)
	if err != nil {
		return fmt.Errorf("flag -epsilon: %w", err)
	}
	feps := eps
	if *fuseEps != "" {
		if feps, err = parseEpsilon(*fuseEps); err != nil {
			return fmt.Errorf("flag -fuse-epsilon: %w", err)
		}
	}
	cfg := eval.FedUVConfig{
		Dir: *data, Skip: *skip, Users: *users, Seed: *seed, Workers: *workers,
		Epsilon: eps, Rounds: *rounds, LocalSteps: *steps, LearningRate: *lr, ServerRate: *serverLR, Clip: *clip,
		Hidden: *hidden, Dim: *dim, Margin: *margin, Fuse: *fuse, FuseEpsilon: feps,
		Progress: evalProgress(stderr),
	}
	res, err := eval.FedUV(ctx, cfg)
	if err != nil {
		return fmt.Errorf("eval feduv: %w", err)
	}
	if *jsonOut {
		r := *res
		r.Config.Progress = nil
		if math.IsInf(r.Config.Epsilon, 1) {
			r.Config.Epsilon, r.EpsilonSpent = 0, 0 // JSON has no infinity: 0 means plaintext
		}
		if math.IsInf(r.Config.FuseEpsilon, 1) {
			r.Config.FuseEpsilon = 0
		}
		return evalWriteJSON(stdout, r)
	}
	c := res.Config
	fmt.Fprintf(stdout, "vigil eval feduv --data %s --users %d --skip %d --seed %d --epsilon %s --rounds %d --local-steps %d --lr %g --server-lr %g --clip %g --hidden %d --dim %d --margin %g%s\n",
		c.Dir, c.Users, c.Skip, c.Seed, formatEpsilon(c.Epsilon), c.Rounds, c.LocalSteps, c.LearningRate, c.ServerRate, c.Clip, c.Hidden, c.Dim, c.Margin, fuseArg(c))
	fmt.Fprintf(stdout, "users %d (every one a device and evaluated); trials %d genuine, %d impostor; network %d -> %d -> %d tanh, %d parameters; random binary code of length %d, min Hamming distance %d\n",
		res.Users, res.GenuineTrials, res.ImpostorTrials, res.Inputs, c.Hidden, c.Dim, res.Params, c.Dim, res.CodeMinDistance)
	if res.NoiseMultiplier > 0 {
		fmt.Fprintf(stdout, "DP-FedAvg: z %.4f, C %g, noise z*C on the sum of %d devices, fixed denominator %d; epsilon %.4f at delta %g over %d rounds (KnownParticipation, q = 1); deltas clipped %.1f%%\n",
			res.NoiseMultiplier, c.Clip, res.Users, res.Users, res.EpsilonSpent, c.Delta, c.Rounds, 100*res.ClippedShare)
	} else {
		fmt.Fprintf(stdout, "plaintext FedAvg: no clipping, no noise\n")
	}
	fmt.Fprintf(stdout, "training loss %.4f -> %.4f\n", res.LossStart, res.LossEnd)
	fmt.Fprintf(stdout, "FedUV cosine: EER mean %.2f%% [%.2f, %.2f], pooled %.2f%% [%.2f, %.2f]\n",
		100*res.FedUV.EERMean, 100*res.FedUVMeanCI.Lo, 100*res.FedUVMeanCI.Hi, 100*res.FedUV.EERPooled, 100*res.FedUVPoolCI.Lo, 100*res.FedUVPoolCI.Hi)
	if res.Deployed != nil {
		fmt.Fprintf(stdout, "deployed (population round at epsilon %s) combined: EER mean %.2f%%, pooled %.2f%%\n", formatEpsilon(c.FuseEpsilon), 100*res.Deployed.EERMean, 100*res.Deployed.EERPooled)
		if res.ComposedEpsilon > 0 {
			fmt.Fprintf(stdout, "both releases together (population round + %d FedUV rounds): epsilon %.3f at delta %g\n", c.Rounds, res.ComposedEpsilon, c.Delta)
		}
		fmt.Fprintf(stdout, "%-8s %22s %22s %22s\n", "fusion w", "all: mean / pooled", "first 100 (dev)", "others")
		for _, f := range res.Fused {
			fmt.Fprintf(stdout, "%-8g %10.2f%% / %6.2f%% %10.2f%% / %6.2f%% %10.2f%% / %6.2f%%\n", f.Weight,
				100*f.All.EERMean, 100*f.All.EERPooled, 100*f.Dev.EERMean, 100*f.Dev.EERPooled, 100*f.Rest.EERMean, 100*f.Rest.EERPooled)
		}
	}
	fmt.Fprintf(stdout, "time: read %v, training %v, scoring %v, deployed %v\n", res.LoadTime.Round(1e6), res.TrainTime.Round(1e6), res.ScoreTime.Round(1e6), res.DeployedTime.Round(1e6))
	return nil
}

func fuseArg(c eval.FedUVConfig) string {
	if !c.Fuse {
		return ""
	}
	return " --fuse --fuse-epsilon " + formatEpsilon(c.FuseEpsilon)
}
