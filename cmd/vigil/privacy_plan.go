package main

import (
	"context"
	"fmt"
	"io"

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
	fs.Float64Var(&cfg.Tolerance, "tolerance", 1e-6, "relative precision of the search for z")
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
	opts, err := acct.options()
	if err != nil {
		return err
	}
	cfg.Options, cfg.Mechanism = opts, mech.m
	res, err := dp.Plan(cfg)
	if err != nil {
		return blameFlag(err, planFlagNames())
	}
	if asJSON {
		return writeJSON(stdout, struct {
			NoiseMultiplier float64 `json:"noise_multiplier"`
			Epsilon         float64 `json:"epsilon"`
			Order           float64 `json:"order"`
			SamplingRate    float64 `json:"sampling_rate"`
			Tolerance       float64 `json:"tolerance"`
			AtLowerLimit    bool    `json:"at_lower_limit"`
			Mechanism       string  `json:"mechanism"`
		}{res.NoiseMultiplier, res.Epsilon, res.Order, res.SamplingRate, cfg.Tolerance, res.AtLowerLimit, mech.m.String()})
	}
	fmt.Fprintf(stdout, "smallest noise multiplier: z = %.6g\n", res.NoiseMultiplier)
	fmt.Fprintf(stdout, "  gives epsilon = %.8g <= %g at delta = %g after %d rounds (optimal RDP order %v)\n",
		res.Epsilon, cfg.Epsilon, cfg.Delta, cfg.Rounds, res.Order)
	if cfg.MinParticipants > 1 {
		fmt.Fprintf(stdout, "  sampling rate q = %g: a device's chance of being in a round that samples %d of %d in expectation and is drawn again below m_min = %d (%.4g x K/N; user-level: one device per user)\n",
			res.SamplingRate, cfg.ClientsPerRound, cfg.Population, cfg.MinParticipants, res.SamplingRate*float64(cfg.Population)/float64(cfg.ClientsPerRound))
	} else {
		fmt.Fprintf(stdout, "  sampling rate q = %d/%d = %g (user-level: one device per user)\n", cfg.ClientsPerRound, cfg.Population, res.SamplingRate)
	}
	fmt.Fprintf(stdout, "  search: bisection on z, stops at a relative width of %g; z is at most that far above the true minimum\n", cfg.Tolerance)
	if res.AtLowerLimit {
		fmt.Fprintf(stdout, "  note: even z = %g meets the budget; the search goes no lower\n", res.NoiseMultiplier)
	}
	fmt.Fprintf(stdout, "  each round: %s\n", mechanismWords(mech.m))
	fmt.Fprintf(stdout, "  each device adds noise of stddev z*C/sqrt(m_min - t_dev); accounting: %s\n", acct.describe(opts))
	return nil
}
