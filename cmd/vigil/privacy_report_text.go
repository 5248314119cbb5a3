package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// writeReportText prints the report for a terminal: assumptions, one table per model, the
// composition and the warnings.
func writeReportText(w io.Writer, rep *privacyReport) {
	fmt.Fprintf(w, "privacy report for %s (generated %s)\n", rep.Dir, rep.Generated)
	fmt.Fprintf(w, "  adjacency:  %s\n  mechanism:  %s (sampled Gaussian, participation known to the coordinator)\n  accounting: %s\n",
		rep.Adjacency, rep.Mechanism, rep.Accounting)
	if rep.Population > 0 {
		fmt.Fprintf(w, "  population: %d enrolled devices\n", rep.Population)
	}
	fmt.Fprintln(w, "  assumptions:")
	for _, a := range rep.Assumptions {
		fmt.Fprintf(w, "    - %s\n", a)
	}
	for _, m := range rep.Models {
		if rep.StoreMissing {
			fmt.Fprintf(w, "\nmodel %s: ledger %s, no model store: rounds not checked against released models\n", m.Model, m.Ledger)
		} else {
			fmt.Fprintf(w, "\nmodel %s: ledger %s, %d stored versions\n", m.Model, m.Ledger, m.Versions)
		}
		fmt.Fprintf(w, "%7s %7s %-19s %6s %8s %6s %5s %5s %6s %9s %9s  %-12s %s\n",
			"round", "version", "mechanism", "z", "q", "C", "m_min", "t_dev", "parts", "epsilon", "+round", "model", "time")
		for _, r := range m.Rounds {
			sum := r.ModelSHA256
			if len(sum) > 12 {
				sum = sum[:12]
			}
			v := "-"
			if r.Version != 0 {
				v = fmt.Sprintf("v%d", r.Version)
			}
			other := "" // a round charged here that released another model: a population's
			if r.Model != "" && r.Model != m.Model {
				other = "  " + r.Model
			}
			eps, inc := fmt.Sprintf("%9.5g", r.Epsilon), fmt.Sprintf("%9.4g", r.EpsilonIncrease)
			if !r.Private() {
				eps, inc = fmt.Sprintf("%9s", "unbounded"), fmt.Sprintf("%9s", "unbounded")
			}
			fmt.Fprintf(w, "%7d %7s %-19s %6.4g %8.4g %6.4g %5d %5d %6d %s %s  %-12s %s%s\n",
				r.Round, v, r.Mechanism, r.NoiseMultiplier, r.SamplingRate, r.ClipNorm, r.MinParticipants, r.ToleratedDevices,
				r.Participants, eps, inc, sum, r.Time, other)
		}
		if m.Unbounded {
			fmt.Fprintf(w, "  privacy loss unbounded: differential privacy was off in %d of %d rounds\n", len(m.Unprotected), len(m.Rounds))
		} else {
			fmt.Fprintf(w, "  spent epsilon %.6g of %g at delta %g (%.1f%%) in %d rounds; remaining %.6g\n",
				m.Spent, m.Budget.Epsilon, m.Budget.Delta, 100*m.Spent/m.Budget.Epsilon, len(m.Rounds), m.Remaining)
		}
		if len(m.ByModel) > 1 {
			var parts []string
			for _, s := range m.ByModel {
				rounds := "rounds"
				if s.Rounds == 1 {
					rounds = "round"
				}
				eps := fmt.Sprintf("%.4g", s.Epsilon)
				if s.Unbounded {
					eps = "unbounded"
				}
				parts = append(parts, fmt.Sprintf("%s %s (%d %s)", s.Model, eps, s.Rounds, rounds))
			}
			total := fmt.Sprintf("%.6g", m.Spent)
			if m.Unbounded {
				total = "unbounded"
			}
			fmt.Fprintf(w, "  each model's rounds alone: %s; composed, %s\n", strings.Join(parts, ", "), total)
		}
	}
	if rep.Composed.Unbounded {
		fmt.Fprintf(w, "\ncomposed across %d model(s): unbounded, differential privacy was off in some rounds\n", rep.Composed.Models)
	} else {
		fmt.Fprintf(w, "\ncomposed across %d model(s): epsilon %.6g at delta %g (RDP order %v)\n",
			rep.Composed.Models, rep.Composed.Epsilon, rep.Composed.Delta, rep.Composed.Order)
	}
	if len(rep.Warnings) == 0 {
		fmt.Fprintln(w, "no warnings")
		return
	}
	fmt.Fprintf(w, "%d warning(s):\n", len(rep.Warnings))
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "  ! %s\n", s)
	}
}

// printReportSummary prints the few lines of the report the demo ends with.
func printReportSummary(w io.Writer, dir string, population int) error {
	rep, err := buildReport(context.Background(), dir, "", population, 0)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\nprivacy report (`vigil privacy report --dir "+dir+"` for the whole of it):")
	for _, m := range rep.Models {
		// A ledger begun without differential privacy holds a placeholder budget: no epsilon
		// says anything about rounds released without noise.
		if m.Unbounded {
			fmt.Fprintf(w, "  model %s: privacy loss unbounded, differential privacy off in %d of %d rounds; ledger %s\n",
				m.Model, len(m.Unprotected), len(m.Rounds), m.Ledger)
			continue
		}
		fmt.Fprintf(w, "  model %s: epsilon %.4g of %g at delta %g over %d charged rounds; ledger %s\n",
			m.Model, m.Spent, m.Budget.Epsilon, m.Budget.Delta, len(m.Rounds), m.Ledger)
	}
	fmt.Fprintf(w, "  adjacency: %s\n", rep.Adjacency)
	if len(rep.Warnings) == 0 {
		fmt.Fprintln(w, "  no warnings")
	}
	for _, s := range rep.Warnings {
		fmt.Fprintf(w, "  ! %s\n", s)
	}
	return nil
}
