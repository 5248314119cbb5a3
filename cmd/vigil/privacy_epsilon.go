package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vigilauth/vigil/dp"
)

// runPrivacyEpsilon is `vigil privacy epsilon`: the epsilon of one event
// given by --sampling-rate/--noise-multiplier/--steps and/or any number of
// --event Q:Z:T, composed.
func runPrivacyEpsilon(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy epsilon", stdout)
	var (
		q, z, delta float64
		steps       int
		events      eventList
		mech        mechanismFlag
		acct        accountingFlags
		asJSON      bool
	)
	fs.Float64Var(&q, "sampling-rate", 0, "sampling rate q in (0, 1]: expected participants / population")
	fs.Float64Var(&z, "noise-multiplier", 0, "noise multiplier z > 0: noise stddev / clip norm")
	fs.IntVar(&steps, "steps", 0, "steps (rounds) T >= 0")
	fs.Float64Var(&delta, "delta", 0, "delta in (0, 1) (required)")
	fs.Var(&events, "event", "a further event Q:Z:T to compose, :known or :hidden appended to override --mechanism (repeatable)")
	mech.register(fs)
	acct.register(fs)
	fs.BoolVar(&asJSON, "json", false, `print {"epsilon": E, "order": A}`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := setFlags(fs)
	if err := requireFlags(set, "delta"); err != nil {
		return err
	}
	opts, err := acct.options()
	if err != nil {
		return err
	}
	var all []dp.Event
	if set["sampling-rate"] || set["noise-multiplier"] || set["steps"] {
		if err := requireFlags(set, "sampling-rate", "noise-multiplier", "steps"); err != nil {
			return fmt.Errorf("%w (an event needs all three)", err)
		}
		ev := dp.Event{SamplingRate: q, NoiseMultiplier: z, Steps: steps, Mechanism: mech.m}
		if err := ev.Validate(); err != nil {
			return blameFlag(err, map[string]string{
				"sampling rate q": "sampling-rate", "noise multiplier z": "noise-multiplier", "steps T": "steps",
			})
		}
		all = append(all, ev)
	}
	all = append(all, events.events(mech.m)...)
	if len(all) == 0 {
		return errors.New("no event: give --sampling-rate, --noise-multiplier and --steps, or at least one --event Q:Z:T")
	}
	eps, order, err := dp.Epsilon(all, delta, opts)
	if err != nil {
		return blameFlag(err, map[string]string{"delta": "delta"})
	}
	if asJSON {
		return writeJSON(stdout, struct {
			Epsilon float64 `json:"epsilon"`
			Order   float64 `json:"order"`
		}{eps, order})
	}
	fmt.Fprintf(stdout, "epsilon = %.6g at delta = %g (optimal RDP order %v)\n", eps, delta, order)
	for _, ev := range all {
		fmt.Fprintf(stdout, "  event: q = %g, z = %g, T = %d, %s\n", ev.SamplingRate, ev.NoiseMultiplier, ev.Steps, mechanismWords(ev.Mechanism))
	}
	fmt.Fprintf(stdout, "  accounting: sampled Gaussian, RDP, %s\n", acct.describe(opts))
	return nil
}

// mechanismWords says in words what an event's mechanism assumes.
func mechanismWords(m dp.Mechanism) string {
	if m == dp.KnownParticipation {
		return "participation known to the adversary (what Vigil's ledgers charge)"
	}
	return "Poisson sampling hidden from the adversary"
}
