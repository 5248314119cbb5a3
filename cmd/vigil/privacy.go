package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/vigilauth/vigil/dp"
)

// privacySubcommand is one tool of `vigil privacy`.
type privacySubcommand struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func privacySubcommands() []privacySubcommand {
	return []privacySubcommand{
		{"epsilon", "epsilon spent by subsampled-Gaussian events (RDP accountant)", runPrivacyEpsilon},
		{"plan", "smallest noise multiplier that meets an (epsilon, delta) budget", runPrivacyPlan},
		{"curve", "epsilon against rounds for several noise multipliers (table, PNG)", runPrivacyCurve},
		{"ledger", "what a privacy ledger file records, round by round", runPrivacyLedger},
		{"tradeoff", "accuracy of the deployable models against epsilon, on recorded data (table, PNG)", runPrivacyTradeoff},
		{"report", "a coordinator's models: every charged round, epsilon per model and composed, assumptions, warnings (text, JSON, signed HTML)", runPrivacyReport},
		{"verify-report", "check the signature of an HTML privacy report (exit 1 if it does not verify)", runPrivacyVerifyReport},
		{"policy", "sign the privacy policy devices hold every task to (privacy office)", runPrivacyPolicy},
	}
}

// runPrivacy is `vigil privacy`: the privacy reviewers' tools.
func runPrivacy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		privacyUsage(stderr)
		if len(args) == 0 {
			return errors.New("privacy: no subcommand given")
		}
		return nil
	}
	for _, c := range privacySubcommands() {
		if c.name == args[0] {
			if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					return err
				}
				return fmt.Errorf("privacy %s: %w", c.name, err)
			}
			return nil
		}
	}
	privacyUsage(stderr)
	return fmt.Errorf("privacy: unknown subcommand %q", args[0])
}

func privacyUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: vigil privacy <subcommand> [flags]\n\nsubcommands:")
	for _, c := range privacySubcommands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'vigil privacy <subcommand> -h' for its flags.")
}

// parseFlags parses args into fs and rejects positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	return nil
}

// setFlags returns the names of the flags given on the command line.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func requireFlags(set map[string]bool, names ...string) error {
	var missing []string
	for _, n := range names {
		if !set[n] {
			missing = append(missing, "--"+n)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing required flag %s", strings.Join(missing, ", "))
	}
	return nil
}

// blameFlag prefixes a *dp.ParamError with the flag that supplied the
// parameter, so every validation error names the flag at fault.
func blameFlag(err error, flags map[string]string) error {
	var pe *dp.ParamError
	if errors.As(err, &pe) {
		if name, ok := flags[pe.Param]; ok {
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return err
}

// accountingFlags are the accountant options shared by the subcommands.
type accountingFlags struct {
	orders, series, conversion string
}

func (a *accountingFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&a.orders, "orders", "default", "RDP orders: default (dp_accounting, 156), tf-privacy (72) or opacus (151)")
	fs.StringVar(&a.series, "series", "bound", "fractional-order series: bound (dp_accounting) or signed (Opacus, TF-Privacy)")
	fs.StringVar(&a.conversion, "conversion", "improved", "RDP to (epsilon, delta): improved (Balle et al. 2020) or classic (Mironov 2017)")
}

func (a *accountingFlags) options() (dp.Options, error) {
	orders, err := dp.NamedOrders(a.orders)
	if err != nil {
		return dp.Options{}, fmt.Errorf("--orders: %w", err)
	}
	series, err := dp.ParseSeries(a.series)
	if err != nil {
		return dp.Options{}, fmt.Errorf("--series: %w", err)
	}
	conv, err := dp.ParseConversion(a.conversion)
	if err != nil {
		return dp.Options{}, fmt.Errorf("--conversion: %w", err)
	}
	return dp.Options{Orders: orders, Series: series, Conversion: conv}, nil
}

func (a *accountingFlags) describe(opts dp.Options) string {
	return fmt.Sprintf("orders %s (%d), series %s, conversion %s", a.orders, len(opts.Orders), opts.Series, opts.Conversion)
}

// mechanismFlag is --mechanism: which analysis an event gets. The default is the one Vigil's
// ledgers charge, so that what a reviewer plans is what the coordinator will spend.
type mechanismFlag struct{ m dp.Mechanism }

var _ flag.Value = (*mechanismFlag)(nil)

func (f *mechanismFlag) register(fs *flag.FlagSet) {
	f.m = dp.KnownParticipation
	fs.Var(f, "mechanism", "analysis of each round: known-participation (what Vigil's ledgers charge: the coordinator sees who takes part) "+
		"or poisson-hidden (amplification by hidden sampling, as dp_accounting, Opacus and TF-Privacy compute)")
}

func (f *mechanismFlag) String() string { return f.m.String() }

// Set parses a mechanism name.
func (f *mechanismFlag) Set(s string) error {
	m, err := dp.ParseMechanism(s)
	if err != nil || s == "" {
		return fmt.Errorf("want known-participation or poisson-hidden, got %q", s)
	}
	f.m = m
	return nil
}

// eventSpec is one --event; explicit is set when it names its mechanism.
type eventSpec struct {
	ev       dp.Event
	explicit bool
}

// eventList is the repeatable --event Q:Z:T[:known|:hidden] flag.
type eventList []eventSpec

var _ flag.Value = (*eventList)(nil)

func (l *eventList) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(*l))
	for i, e := range *l {
		parts[i] = e.ev.String()
	}
	return strings.Join(parts, " ")
}

// events returns the events, those without a mechanism of their own taking def.
func (l eventList) events(def dp.Mechanism) []dp.Event {
	out := make([]dp.Event, len(l))
	for i, e := range l {
		out[i] = e.ev
		if !e.explicit {
			out[i].Mechanism = def
		}
	}
	return out
}

// Set parses Q:Z:T (sampling rate, noise multiplier, steps), optionally followed by :known
// (participation known to the adversary) or :hidden (Poisson sampling hidden); without either
// the event takes --mechanism.
func (l *eventList) Set(s string) error {
	p := strings.Split(s, ":")
	var spec eventSpec
	if len(p) == 4 {
		switch p[3] {
		case "known":
			spec.ev.Mechanism, spec.explicit = dp.KnownParticipation, true
		case "hidden":
			spec.ev.Mechanism, spec.explicit = dp.PoissonHidden, true
		default:
			return fmt.Errorf("mechanism suffix %q: want known or hidden", p[3])
		}
		p = p[:3]
	}
	if len(p) != 3 {
		return fmt.Errorf("want Q:Z:T[:known|:hidden] (sampling rate, noise multiplier, steps), got %q", s)
	}
	q, err := strconv.ParseFloat(p[0], 64)
	if err != nil {
		return fmt.Errorf("sampling rate %q is not a number", p[0])
	}
	z, err := strconv.ParseFloat(p[1], 64)
	if err != nil {
		return fmt.Errorf("noise multiplier %q is not a number", p[1])
	}
	t, err := strconv.Atoi(p[2])
	if err != nil {
		return fmt.Errorf("steps %q is not an integer", p[2])
	}
	spec.ev.SamplingRate, spec.ev.NoiseMultiplier, spec.ev.Steps = q, z, t
	if err := spec.ev.Validate(); err != nil {
		return err
	}
	*l = append(*l, spec)
	return nil
}

// writeJSON writes v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
