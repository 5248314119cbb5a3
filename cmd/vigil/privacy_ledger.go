package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vigilauth/vigil/dp"
)

// runPrivacyLedger is `vigil privacy ledger`: what a model's or device's
// privacy ledger records, round by round. The file is validated (checksum,
// canonical form, every epsilon recomputed from the entries) before
// anything is printed.
func runPrivacyLedger(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("privacy ledger", stdout)
	var (
		path, subject string
		asJSON        bool
	)
	fs.StringVar(&path, "path", "", "ledger file (required)")
	fs.StringVar(&subject, "subject", "", "refuse the file unless it belongs to this `SUBJECT`, e.g. model/authnet")
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
	// A round without differential privacy leaves the loss unbounded: what the ledger's entries
	// spent on its private rounds says nothing of it, and the budget (1 for a ledger begun
	// without differential privacy) bounds nothing.
	unprotected := snap.Unprotected()
	unbounded := len(unprotected) > 0
	if asJSON {
		entries := snap.Entries
		if entries == nil {
			entries = []dp.LedgerEntry{}
		}
		return writeJSON(stdout, struct {
			Subject    string           `json:"subject"`
			Budget     dp.Budget        `json:"budget"`
			Accounting string           `json:"accounting"`
			Unbounded  bool             `json:"unbounded"`
			Spent      *float64         `json:"spent"`
			Order      *float64         `json:"order"`
			Remaining  *float64         `json:"remaining"`
			Rounds     []dp.LedgerEntry `json:"rounds"`
		}{snap.Subject, snap.Budget, dp.LedgerAccounting, unbounded, bounded(unbounded, spent), bounded(unbounded, order),
			bounded(unbounded, snap.Budget.Epsilon-spent), entries})
	}
	fmt.Fprintf(stdout, "ledger %s\n  subject:    %s\n  budget:     epsilon %g at delta %g\n  accounting: %s\n\n",
		path, snap.Subject, snap.Budget.Epsilon, snap.Budget.Delta, dp.LedgerAccounting)
	fmt.Fprintf(stdout, "%10s %-19s %14s %10s %6s %8s %5s %5s %6s %14s %12s %6s  %-12s %s\n", "round", "mechanism", "sampling_rate", "z", "steps",
		"C", "m_min", "t_dev", "parts", "epsilon_total", "this_round", "order", "model", "time")
	prev := 0.0
	for _, e := range snap.Entries {
		sum := e.ModelSHA256
		if len(sum) > 12 {
			sum = sum[:12]
		}
		eps, inc, ord := fmt.Sprintf("%14.6g", e.Epsilon), fmt.Sprintf("%12.6g", e.Epsilon-prev), fmt.Sprintf("%6v", e.Order)
		if !e.Private() {
			eps, inc, ord = fmt.Sprintf("%14s", "unbounded"), fmt.Sprintf("%12s", "unbounded"), fmt.Sprintf("%6s", "-")
		}
		fmt.Fprintf(stdout, "%10d %-19s %14.6g %10.6g %6d %8.4g %5d %5d %6d %s %s %s  %-12s %s\n",
			e.Round, e.Mechanism, e.SamplingRate, e.NoiseMultiplier, e.Steps, e.ClipNorm, e.MinParticipants, e.ToleratedDevices,
			e.Participants, eps, inc, ord, sum, e.Time)
		prev = e.Epsilon
	}
	if unbounded {
		fmt.Fprintf(stdout, "\nWARNING: rounds %v were released WITHOUT differential privacy: the subject's privacy loss is unbounded\n", unprotected)
		fmt.Fprintf(stdout, "\nprivacy loss unbounded: differential privacy was off in %d of %d rounds; no epsilon is spent or remaining\n",
			len(unprotected), len(snap.Entries))
		return nil
	}
	fmt.Fprintf(stdout, "\nspent epsilon %.6g of %g (%.1f%%) in %d rounds; remaining %.6g\n",
		spent, snap.Budget.Epsilon, 100*spent/snap.Budget.Epsilon, len(snap.Entries), snap.Budget.Epsilon-spent)
	return nil
}
