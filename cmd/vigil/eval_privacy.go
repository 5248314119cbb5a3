package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/vigilauth/vigil/models/eval"
)

// privacyFlags are the evaluations' flags for the deployable, differentially private federation.
type privacyFlags struct {
	epsilon string
	clip    float64
}

func (p *privacyFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.epsilon, "epsilon", "", "evaluate what is deployable: the population model learnt through DP rounds spending this total "+
		"epsilon at delta 1e-5 ('inf': the same rounds without noise); empty: the plaintext simulation, which no release can ship")
	fs.Float64Var(&p.clip, "clip", 0, "clip norm C of the population round (0: the default)")
}

// config returns the privacy simulation the flags ask for (disabled without --epsilon).
func (p *privacyFlags) config() (eval.PrivacyConfig, error) {
	if p.epsilon == "" {
		if p.clip != 0 {
			return eval.PrivacyConfig{}, fmt.Errorf("flag -clip: only with -epsilon")
		}
		return eval.PrivacyConfig{}, nil
	}
	eps, err := parseEpsilon(p.epsilon)
	if err != nil {
		return eval.PrivacyConfig{}, fmt.Errorf("flag -epsilon: %w", err)
	}
	if p.clip < 0 || math.IsNaN(p.clip) || math.IsInf(p.clip, 0) {
		return eval.PrivacyConfig{}, fmt.Errorf("flag -clip: %v, want > 0", p.clip)
	}
	c := eval.PrivacyConfig{Epsilon: eps}
	c.Stats.Clip = p.clip
	return c, nil
}

func (p *privacyFlags) describe() string {
	if p.epsilon == "" {
		return "plaintext federation (not deployable)"
	}
	return "deployable federation at epsilon " + p.epsilon
}

// parseEpsilon reads a total epsilon: a number > 0 or "inf".
func parseEpsilon(s string) (float64, error) {
	if strings.EqualFold(s, "inf") {
		return math.Inf(1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q, want a number > 0 or inf", s)
	}
	return v, nil
}

// formatEpsilon prints an epsilon as the flag takes it.
func formatEpsilon(e float64) string {
	if math.IsInf(e, 1) {
		return "inf"
	}
	return strconv.FormatFloat(e, 'g', -1, 64)
}

func epsilonArg(c eval.PrivacyConfig) string {
	if !c.Enabled() {
		return ""
	}
	return " --epsilon " + formatEpsilon(c.Epsilon)
}

// jsonEpsilon is the epsilon for JSON, which has no infinity: "inf", a number, or null when the
// evaluation is the plaintext simulation.
func jsonEpsilon(c eval.PrivacyConfig) any {
	switch {
	case !c.Enabled():
		return nil
	case math.IsInf(c.Epsilon, 1):
		return "inf"
	}
	return c.Epsilon
}

// federatedLabel names the federated mode of a result: what it is and whether it can ship.
func federatedLabel(r *eval.PrivateRounds) string {
	switch {
	case r == nil:
		return "federated (plaintext simulation, not deployable)"
	case math.IsInf(r.Epsilon, 1):
		return "deployable rounds without noise (epsilon inf, non-private reference)"
	}
	return fmt.Sprintf("deployable (epsilon %s)", formatEpsilon(r.Epsilon))
}

func printPrivateRounds(w io.Writer, r *eval.PrivateRounds) {
	if r == nil {
		return
	}
	if math.IsInf(r.Epsilon, 1) {
		fmt.Fprintf(w, "population round: %d devices, clip %g, no noise (epsilon inf); %d of %d buckets modelled\n",
			r.Devices, r.Clip, r.Buckets, r.Total)
		return
	}
	fleet := ""
	if r.Fleet > r.Devices {
		fleet = fmt.Sprintf(" standing for a fleet of %d", r.Fleet)
	}
	centring := ""
	if r.CentringNoise > 0 {
		centring = fmt.Sprintf(" (after a centring round at z %.4f)", r.CentringNoise)
	}
	fmt.Fprintf(w, "population round: %d devices%s (q = 1), clip %g, z %.4f%s, m_min %d, t_dev %d, noise per device %.4g; epsilon %.4f of %g at delta %g; %d of %d buckets modelled\n",
		r.Devices, fleet, r.Clip, r.NoiseMultiplier, centring, r.MMin, r.TDev, r.DeviceNoise, r.EpsilonSpent, r.Epsilon, r.Delta, r.Buckets, r.Total)
}
