package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/vigilauth/vigil/dp"
)

// runPrivacyLedger is `vigil privacy ledger`: what a model's or device's
// privacy ledger records, round by round. The file is validated (checksum,
// canonical form, every epsilon recomputed from the entries) before
// anything is printed.
func runPrivacyLedger(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("privacy ledger", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		path, subject string
		asJSON        bool
	)
	fs.StringVar(&path, "path", "", "ledger file (required)")
	fs.StringVar(&subject, "subject", "", "refuse the file unless it belongs to this subject, e.g. model/authnet")
	fs.BoolVar(&asJSON, "json", false, "print the ledger as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if path == "" {
		return errors.New("missing required flag --path")
	}
	snap, err := dp.ReadLedger(path)
	if err != nil {
		return fmt.Errorf("--path: %w", err)
	}
	if subject != "" && snap.Subject != subject {
		return fmt.Errorf("--subject: %s belongs to %q, not %q: %w", path, snap.Subject, subject, dp.ErrLedgerMismatch)
	}
	spent, order := snap.Spent()
	if asJSON {
		entries := snap.Entries
		if entries == nil {
			entries = []dp.LedgerEntry{}
		}
		return writeJSON(stdout, struct {
			Subject    string           `json:"subject"`
			Budget     dp.Budget        `json:"budget"`
			Accounting string           `json:"accounting"`
			Spent      float64          `json:"spent"`
			Order      float64          `json:"order"`
			Remaining  float64          `json:"remaining"`
			Rounds     []dp.LedgerEntry `json:"rounds"`
		}{snap.Subject, snap.Budget, dp.LedgerAccounting, spent, order, snap.Budget.Epsilon - spent, entries})
	}
	fmt.Fprintf(stdout, "ledger %s\n  subject:    %s\n  budget:     epsilon %g at delta %g\n  accounting: %s\n\n",
		path, snap.Subject, snap.Budget.Epsilon, snap.Budget.Delta, dp.LedgerAccounting)
	fmt.Fprintf(stdout, "%10s %14s %10s %6s %14s %12s %6s\n", "round", "sampling_rate", "z", "steps", "epsilon_total", "this_round", "order")
	prev := 0.0
	for _, e := range snap.Entries {
		fmt.Fprintf(stdout, "%10d %14.6g %10.6g %6d %14.6g %12.6g %6v\n",
			e.Round, e.SamplingRate, e.NoiseMultiplier, e.Steps, e.Epsilon, e.Epsilon-prev, e.Order)
		prev = e.Epsilon
	}
	fmt.Fprintf(stdout, "\nspent epsilon %.6g of %g (%.1f%%) in %d rounds; remaining %.6g\n",
		spent, snap.Budget.Epsilon, 100*spent/snap.Budget.Epsilon, len(snap.Entries), snap.Budget.Epsilon-spent)
	return nil
}
