package dp

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
)

// Ledger is a persisted privacy ledger for one subject: a model (at the
// coordinator) or a device (on the device). It records every charged round
// and refuses a round that would take the subject's epsilon, at the
// budget's delta, past the budget.
//
// Every change is written to disk atomically (temporary file, fsync,
// rename, fsync of the directory) before Charge returns, so the ledger
// survives crashes and restarts; a file that is corrupt or belongs to
// another subject or budget is refused by OpenLedger.
//
// When to charge: privacy is spent when a noised sum is released, so the
// coordinator calls Check before starting a round and Charge before it asks
// the trustees to decrypt (a round that fails afterwards stays charged,
// which errs on the safe side). A device calls Check when invited and
// Charge before sending its update.
//
// What a device charges: for each round it contributes to, a device ledger
// should charge Event{SamplingRate: 1, NoiseMultiplier: z, Steps: 1}. That
// ignores amplification by sampling, so it bounds what the contents of the
// device's updates reveal even if it becomes known which devices took part
// (participation itself is then public), which a device cannot rule out.
// The model ledger charges every round with q = K/N.
//
// A file that exists is never silently replaced: an empty or truncated
// file is reported as corrupt, not treated as a new ledger.
//
// A Ledger must be used from one goroutine at a time, and a ledger file
// must be owned by one process: the package does not lock the file.
type Ledger struct {
	path string
	snap LedgerSnapshot
	acc  *Accountant // RDP of all entries
}

// OpenLedger opens the ledger file at path for subject, creating it with an
// empty history if it does not exist. An existing file must be intact and
// record the same subject and budget; otherwise the error wraps
// ErrLedgerCorrupt or ErrLedgerMismatch and names both values.
func OpenLedger(path, subject string, budget Budget) (*Ledger, error) {
	if err := validateSubject(subject); err != nil {
		return nil, err
	}
	if err := budget.Validate(); err != nil {
		return nil, err
	}
	acc, err := NewAccountant(Options{})
	if err != nil {
		return nil, err
	}
	l := &Ledger{path: path, acc: acc}
	data, err := readCapped(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		l.snap = LedgerSnapshot{Subject: subject, Budget: budget, Entries: []LedgerEntry{}}
		if err := l.persist(); err != nil {
			return nil, err
		}
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("dp: opening ledger: %w", err)
	}
	snap, acc, err := decodeLedger(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if snap.Subject != subject {
		return nil, fmt.Errorf("%w: %s records subject %q, not %q", ErrLedgerMismatch, path, snap.Subject, subject)
	}
	if snap.Budget != budget {
		return nil, fmt.Errorf("%w: %s records budget epsilon %g at delta %g, not epsilon %g at delta %g",
			ErrLedgerMismatch, path, snap.Budget.Epsilon, snap.Budget.Delta, budget.Epsilon, budget.Delta)
	}
	l.snap, l.acc = *snap, acc
	return l, nil
}

// validateChargeEvent accepts valid events of at least one step.
func validateChargeEvent(ev Event) error {
	if err := ev.Validate(); err != nil {
		return err
	}
	if ev.Steps < 1 {
		return paramErr("steps T", ev.Steps, ">= 1 for a charged round")
	}
	return nil
}

// Check returns the epsilon the subject would have spent after ev, and its
// order, without recording anything. If that exceeds the budget the error
// is a *BudgetError (errors.Is(err, ErrBudgetExhausted)).
func (l *Ledger) Check(ev Event) (eps, order float64, err error) {
	return l.project(0, ev)
}

func (l *Ledger) project(round uint64, ev Event) (eps, order float64, err error) {
	if err := validateChargeEvent(ev); err != nil {
		return 0, 0, err
	}
	r, err := RDP(ev, l.acc.opts.Orders, l.acc.opts.Series)
	if err != nil {
		return 0, 0, err
	}
	total := l.acc.RDP()
	for i := range total {
		total[i] += r[i]
	}
	eps, order, err = EpsilonFromRDP(l.acc.opts.Orders, total, l.snap.Budget.Delta, l.acc.opts.Conversion)
	if err != nil {
		return 0, 0, err
	}
	if eps > l.snap.Budget.Epsilon {
		spent, _ := l.snap.Spent()
		return eps, order, &BudgetError{Subject: l.snap.Subject, Round: round, Spent: spent, After: eps, Budget: l.snap.Budget}
	}
	return eps, order, nil
}

// Charge records round as having run ev, and persists the ledger. It
// refuses (with a *BudgetError, errors.Is ErrBudgetExhausted) a round that
// would exceed the budget; nothing is recorded then.
//
// Charge is idempotent: charging a round that is already recorded with the
// same event returns the recorded entry and changes nothing, so a retried
// charge never counts twice. A recorded round with a different event, or a
// new round older than the last recorded one, is ErrRoundConflict.
func (l *Ledger) Charge(round uint64, ev Event) (LedgerEntry, error) {
	entries := l.snap.Entries
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Round >= round })
	if i < len(entries) {
		if entries[i].Round == round {
			if entries[i].Event() == ev {
				return entries[i], nil
			}
			return LedgerEntry{}, fmt.Errorf("%w: round %d of %s was charged with %v, now %v", ErrRoundConflict, round, l.snap.Subject, entries[i].Event(), ev)
		}
		return LedgerEntry{}, fmt.Errorf("%w: round %d of %s is older than the last charged round %d", ErrRoundConflict, round, l.snap.Subject, entries[len(entries)-1].Round)
	}
	if len(entries) >= MaxLedgerEntries {
		return LedgerEntry{}, fmt.Errorf("%w: %d rounds recorded for %s", ErrLedgerFull, len(entries), l.snap.Subject)
	}
	eps, order, err := l.project(round, ev)
	if err != nil {
		return LedgerEntry{}, err
	}
	e := LedgerEntry{Round: round, SamplingRate: ev.SamplingRate, NoiseMultiplier: ev.NoiseMultiplier, Steps: ev.Steps, Epsilon: eps, Order: order}
	l.snap.Entries = append(entries, e)
	if err := l.persist(); err != nil {
		l.snap.Entries = entries[:len(entries):len(entries)]
		return LedgerEntry{}, err
	}
	if err := l.acc.Compose(ev); err != nil { // cannot fail: project validated ev
		return LedgerEntry{}, err
	}
	return e, nil
}

// Spent returns the epsilon spent so far at the budget's delta, and the
// RDP order that gives it (0, 0 before the first round).
func (l *Ledger) Spent() (eps, order float64) { return l.snap.Spent() }

// Remaining returns the budget's epsilon minus the epsilon spent.
func (l *Ledger) Remaining() float64 {
	eps, _ := l.snap.Spent()
	return l.snap.Budget.Epsilon - eps
}

// Subject returns the ledger's subject.
func (l *Ledger) Subject() string { return l.snap.Subject }

// Budget returns the ledger's budget.
func (l *Ledger) Budget() Budget { return l.snap.Budget }

// Path returns the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Entries returns a copy of the recorded rounds, oldest first.
func (l *Ledger) Entries() []LedgerEntry { return append([]LedgerEntry(nil), l.snap.Entries...) }

func (l *Ledger) persist() error {
	data, err := l.snap.Encode()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(l.path, data); err != nil {
		return fmt.Errorf("dp: writing ledger %s: %w", l.path, err)
	}
	return nil
}
