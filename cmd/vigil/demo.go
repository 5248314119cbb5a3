package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/vigilauth/vigil/agent"
	"github.com/vigilauth/vigil/sim"
)

type demoFlags struct {
	devices, perRound, rounds, window, windows int
	aalto, storeDir                            string
	seed                                       uint64
	logLevel                                   slog.Level
	clip, noise, epsilon, delta, deviceEpsilon float64
	populationNoise                            float64
	mouseNoise                                 float64
	trustees, threshold, updaters, tolerated   int
	plaintext, noDP                            bool
	nats, agent                                string
}

// runDemo runs a whole organisation and its simulated fleet in this process (package sim) and
// ends with the privacy report's summary.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseDemoFlags(args, stderr)
	if err != nil {
		return err
	}
	if f.agent != "" { // a wrong address fails now, not after the rounds
		l, err := agent.Listen(f.agent)
		if err != nil {
			return fmt.Errorf("demo: --agent: %w", err)
		}
		l.Close()
	}
	dir, err := sim.RunDemo(ctx, sim.DemoConfig{
		Devices: f.devices, DevicesPerRound: f.perRound, Rounds: f.rounds, Window: f.window, Windows: f.windows,
		Aalto: f.aalto, Dir: f.storeDir, Seed: f.seed,
		Clip: f.clip, Noise: f.noise, Epsilon: f.epsilon, Delta: f.delta, DeviceEpsilon: f.deviceEpsilon,
		PopulationNoise: f.populationNoise, MousePopulationNoise: f.mouseNoise, Tolerated: f.tolerated, NoDP: f.noDP,
		Trustees: f.trustees, Threshold: f.threshold, Updaters: f.updaters, Plaintext: f.plaintext, NoTier: f.nats == natsOff,
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: f.logLevel})),
		Stdout: stdout, Progress: stderr,
	})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := printReportSummary(stdout, dir, f.devices); err != nil {
		return fmt.Errorf("demo: privacy report: %w", err)
	}
	if f.agent == "" {
		return nil
	}
	// The product's other half on the same run: a device agent that installs what the rounds
	// released, verified against the organisation's root, and fits the users typing in the
	// demo bank on the population the devices learnt together.
	fmt.Fprintf(stdout, "\na device agent following this run's releases in region eu (Ctrl-C ends it):\n")
	err = runAgent(ctx, []string{"--dir", filepath.Join(dir, "agent"), "--http", f.agent, "--grpc", "127.0.0.1:0", "--demo-app",
		"--device-id", "demo-agent", "--root", filepath.Join(dir, sim.DemoRootFile), "--region-store", sim.DemoRegionDir(dir, "eu"),
		"--poll", "2s"}, stdout, stderr)
	if err != nil {
		return fmt.Errorf("demo: --agent: %w", err)
	}
	return nil
}

func parseDemoFlags(args []string, stderr io.Writer) (demoFlags, error) {
	var f demoFlags
	fs := newFlags("demo", stderr)
	fs.IntVar(&f.devices, "devices", 200, "number of simulated devices")
	fs.IntVar(&f.perRound, "devices-per-round", 0, "expected number of devices sampled per round (default a quarter of the devices)")
	fs.IntVar(&f.rounds, "rounds", 20, "most federated rounds to run (the privacy budget may stop the demo earlier)")
	fs.IntVar(&f.window, "window", 50, "keystrokes per window")
	fs.IntVar(&f.windows, "windows", 40, "windows each synthetic user types (a quarter is held out)")
	fs.StringVar(&f.aalto, "aalto", "", "directory of Aalto keystroke files: one device per participant instead of synthetic users")
	fs.StringVar(&f.storeDir, "dir", "", "directory for the model store and the coordinator's state (default: a new temporary directory)")
	fs.Uint64Var(&f.seed, "seed", 1, "seed for synthetic users, the initial model and local training")
	fs.TextVar(&f.logLevel, "log-level", slog.LevelWarn, "log level: debug, info, warn or error")
	fs.Float64Var(&f.clip, "clip", 0.5, "L2 clip norm C of each device's update")
	fs.Float64Var(&f.noise, "noise-multiplier", 2, "noise multiplier z (> 0)")
	fs.Float64Var(&f.populationNoise, "population-noise", 2, "noise multiplier z of the first round, which learns the population model from every device (0: no population round)")
	fs.Float64Var(&f.mouseNoise, "mouse-population-noise", 0, "noise multiplier z of the round that learns the mouse population model from every device's synthetic mouse movement, after a reference round at 3z (0: none; a fleet of 200 needs z below about 0.9, whose epsilon leaves little of the budget for training)")
	fs.Float64Var(&f.epsilon, "epsilon", 8, "privacy budget: the demo stops before a round would exceed it")
	fs.Float64Var(&f.delta, "delta", 1e-5, "delta of the privacy budget")
	fs.Float64Var(&f.deviceEpsilon, "device-epsilon", 16, "each device's own privacy budget (its rounds charged without amplification)")
	fs.IntVar(&f.tolerated, "tolerated-devices", 0, "malicious devices per round the noise is calibrated against (default ceil(m_min/10))")
	fs.BoolVar(&f.noDP, "insecure-no-dp", false, "run the rounds WITHOUT differential privacy (recorded in the ledger and every release)")
	fs.IntVar(&f.trustees, "trustees", 3, "number of trustees holding shares of the decryption key")
	fs.IntVar(&f.threshold, "threshold", 2, "trustees needed to decrypt a round's sum")
	fs.IntVar(&f.updaters, "updaters", 20, "devices that also run the release updater (each writes its installed models to disk)")
	fs.BoolVar(&f.plaintext, "insecure-plaintext", false, "send updates in the clear instead of encrypted (debugging only)")
	fs.StringVar(&f.nats, "nats", natsOff, "the coordinator tier's JetStream: \"off\" (updates go straight into the round's sum) or \"embedded\" (in this process, its store in DIR/state/jetstream)")
	fs.StringVar(&f.agent, "agent", "", "after the rounds, keep running a device agent that serves the demo bank at http://`ADDR`/demo/ and installs this run's releases (127.0.0.1:7412, say; Ctrl-C ends it)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	switch {
	case fs.NArg() > 0:
		return f, unexpectedArgument("demo", fs)
	case f.nats != natsEmbedded && f.nats != natsOff:
		return f, fmt.Errorf("demo: --nats %q: want embedded or off (the demo runs every role in this process)", f.nats)
	case f.devices < 2 || f.devices > 1000:
		return f, fmt.Errorf("demo: --devices %d out of range 2..1000", f.devices)
	case f.rounds < 1 || f.rounds > 1000:
		return f, fmt.Errorf("demo: --rounds %d out of range 1..1000", f.rounds)
	case f.window < 10 || f.window > 1000:
		return f, fmt.Errorf("demo: --window %d out of range 10..1000", f.window)
	case f.windows < 4:
		return f, fmt.Errorf("demo: --windows %d: need at least 4", f.windows)
	case f.perRound < 0 || f.perRound == 1:
		return f, fmt.Errorf("demo: --devices-per-round %d: need at least 2 (trustees never decrypt a single update)", f.perRound)
	case f.updaters < 0:
		return f, fmt.Errorf("demo: --updaters %d is negative", f.updaters)
	case f.clip <= 0:
		return f, fmt.Errorf("demo: --clip %v: need C > 0", f.clip)
	case f.noDP && setFlag(fs, "noise-multiplier"):
		return f, errors.New("demo: --insecure-no-dp conflicts with --noise-multiplier")
	case !f.noDP && !(f.noise > 0):
		return f, fmt.Errorf("demo: --noise-multiplier %v: differential privacy needs z > 0 (to run without it, say --insecure-no-dp)", f.noise)
	case !finiteNonNegative(f.mouseNoise) || f.mouseNoise > 0 && f.aalto != "":
		return f, fmt.Errorf("demo: --mouse-population-noise %v: want z > 0, or 0 for no mouse population rounds (not with --aalto, whose participants have no mouse data)", f.mouseNoise)
	case !finiteNonNegative(f.populationNoise) || f.noDP && f.populationNoise > 0 && setFlag(fs, "population-noise"):
		return f, fmt.Errorf("demo: --population-noise %v: want z > 0, or 0 for no population round (with --insecure-no-dp the round has no noise)", f.populationNoise)
	case !(f.deviceEpsilon > 0):
		return f, fmt.Errorf("demo: --device-epsilon %v must be positive", f.deviceEpsilon)
	}
	return f, nil
}
