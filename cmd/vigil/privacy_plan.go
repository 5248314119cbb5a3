package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/vigilauth/vigil/dp"
)

// planFlagNames maps dp parameter names to the flags of `privacy plan` and
// `privacy curve`.
func planFlagNames() map[string]string {
	return map[string]string{
		"epsilon budget":             "epsilon",
		"delta":                      "delta",
		"enrolled population":        "population",
		"expected devices per round": "clients-per-round",
		"minimum sampled per round":  "min-participants",
		"rounds":                     "rounds",
		"plan tolerance":             "tolerance",
		"sampling rate q":            "sampling-rate",
		"noise multiplier z":         "noise-multipliers",
	}
}

// runPrivacyPlan is `vigil privacy plan`: the smallest noise multiplier
// that keeps a training run within an (epsilon, delta) budget.
func runPrivacyPlan(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy plan", stdout)
	var (
		cfg    dp.PlanConfig
		acct   accountingFlags
		mech   mechanismFlag
		asJSON bool
	)
	fs.Float64Var(&cfg.Epsilon, "epsilon", 0, "epsilon budget > 0 (required)")
	fs.Float64Var(&cfg.Delta, "delta", 0, "delta in (0, 1) (required)")
	fs.IntVar(&cfg.Population, "population", 0, "enrolled devices (users) N (required)")
	fs.IntVar(&cfg.ClientsPerRound, "clients-per-round", 0, "expected participants per round K <= N (required)")
	fs.IntVar(&cfg.Rounds, "rounds", 0, "rounds of training R (required)")
	fs.IntVar(&cfg.MinParticipants, "min-participants", 0, "m_min: rounds that sample fewer are drawn again, which raises q above K/N (default min(2, K), the coordinator's; 0: q = K/N)")
	fs.Float64Var(&cfg.Tolerance, "tolerance", 1e-6, "relative precision of the search for z, in (0, 0.5)")
	acct.register(fs)
	mech.register(fs)
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := setFlags(fs)
	if err := requireFlags(set, "epsilon", "delta", "population", "clients-per-round", "rounds"); err != nil {
		return err
	}
	if !set["min-participants"] {
		cfg.MinParticipants = min(2, cfg.ClientsPerRound) // the coordinator's default --min-updates
	}
	if cfg.Tolerance == 0 { // dp.Plan would search at its default, 1e-6, and the output say 0
		return fmt.Errorf("--tolerance: 0 is not in (0, 0.5); leave it out for the default, 1e-6")
	}
	opts, err := acct.options()
	if err != nil {
		return err
	}
	cfg.Options, cfg.Mechanism = opts, mech.m
	res, err := dp.Plan(cfg)
	if err != nil {
		return blameFlag(err, planFlagNames())
	}
	// The z printed is the search's rounded up to the digits shown, and every figure beside it
	// is that z's: a z rounded to the nearest could fall below the minimum, and a coordinator
	// given it would refuse the last planned round.
	z, eps, order, err := printedNoise(res, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(stdout, struct {
			NoiseMultiplier       float64 `json:"noise_multiplier"`
			Epsilon               float64 `json:"epsilon"`
			Order                 float64 `json:"order"`
			SamplingRate          float64 `json:"sampling_rate"`
			SearchNoiseMultiplier float64 `json:"search_noise_multiplier"`
			Tolerance             float64 `json:"tolerance"`
			AtLowerLimit          bool    `json:"at_lower_limit"`
			Mechanism             string  `json:"mechanism"`
		}{z, eps, order, res.SamplingRate, res.NoiseMultiplier, cfg.Tolerance, res.AtLowerLimit, mech.m.String()})
	}
	fmt.Fprintf(stdout, "smallest noise multiplier: z = %s\n", formatPlanNoise(z))
	fmt.Fprintf(stdout, "  gives epsilon = %.8g <= %g at delta = %g after %d rounds (optimal RDP order %v)\n",
		eps, cfg.Epsilon, cfg.Delta, cfg.Rounds, order)
	if res.SamplingRate != float64(cfg.ClientsPerRound)/float64(cfg.Population) { // m_min = 1 redraws the empty draw
		fmt.Fprintf(stdout, "  sampling rate q = %g: a device's chance of being in a round that samples %d of %d in expectation and is drawn again below m_min = %d (%.4g x K/N; user-level: one device per user)\n",
			res.SamplingRate, cfg.ClientsPerRound, cfg.Population, cfg.MinParticipants, res.SamplingRate*float64(cfg.Population)/float64(cfg.ClientsPerRound))
	} else {
		fmt.Fprintf(stdout, "  sampling rate q = %d/%d = %g (user-level: one device per user)\n", cfg.ClientsPerRound, cfg.Population, res.SamplingRate)
	}
	fmt.Fprintf(stdout, "  search: bisection on z, stops at a relative width of %g; its z = %v is at most that far above the true minimum, "+
		"and z above is it rounded up to %d significant digits\n", cfg.Tolerance, res.NoiseMultiplier, planDigits)
	if res.AtLowerLimit {
		fmt.Fprintf(stdout, "  note: even z = %v meets the budget; the search goes no lower\n", res.NoiseMultiplier)
	}
	fmt.Fprintf(stdout, "  each round: %s\n", mechanismWords(mech.m))
	fmt.Fprintf(stdout, "  each device adds noise of stddev z*C/sqrt(m_min - t_dev); accounting: %s\n", acct.describe(opts))
	return nil
}

// planDigits is how many significant digits `privacy plan` prints z with.
const planDigits = 6

// formatPlanNoise formats z as `privacy plan` prints it: planDigits significant digits, which
// parse back to z when z is a value printedNoise returned.
func formatPlanNoise(z float64) string { return strconv.FormatFloat(z, 'g', planDigits, 64) }

// roundUpDigits returns the smallest number of planDigits significant digits (as the float
// nearest to it) that is at least x > 0.
func roundUpDigits(x float64) float64 {
	y, _ := strconv.ParseFloat(formatPlanNoise(x), 64) // nearest
	for y < x {
		// One unit in the last digit shown, rounded again to those digits.
		unit := math.Pow(10, math.Floor(math.Log10(y))-(planDigits-1))
		y, _ = strconv.ParseFloat(formatPlanNoise(y+unit), 64)
	}
	return y
}

// printedNoise returns the z `privacy plan` prints, res.NoiseMultiplier rounded up to
// planDigits significant digits, with its own epsilon and order. Epsilon falls as z grows, so
// that z meets the budget; should rounding error in the accountant say otherwise, z goes up by
// a unit in the last digit until it does.
func printedNoise(res dp.PlanResult, cfg dp.PlanConfig) (z, eps, order float64, err error) {
	z = roundUpDigits(res.NoiseMultiplier)
	for range 100 {
		eps, order, err = dp.Epsilon([]dp.Event{{SamplingRate: res.SamplingRate, NoiseMultiplier: z, Steps: cfg.Rounds, Mechanism: cfg.Mechanism}}, cfg.Delta, cfg.Options)
		if err != nil {
			return 0, 0, 0, err
		}
		if eps <= cfg.Epsilon {
			return z, eps, order, nil
		}
		z = roundUpDigits(math.Nextafter(z, math.Inf(1)))
	}
	return 0, 0, 0, fmt.Errorf("z = %v found by the search meets the budget, but no z of %d significant digits above it was found that does", res.NoiseMultiplier, planDigits)
}
