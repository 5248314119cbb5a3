package dp

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"sync"
	"time"
)

// DeviceLedgerFile is the name of a device's own privacy ledger in its directory. A device's
// ledger is that device's account of its rounds; it is not composed with models' ledgers.
const DeviceLedgerFile = "privacy.ledger"

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
// The model ledger charges every round with KnownParticipation at q =
// InclusionRate(K, N, m_min), with the round's parameters (ChargeRound), and
// then the released model's hash (RecordRelease); a round that failed on who
// answered is charged with fewer than m_min participants and no hash.
//
// Integrity: the file carries an HMAC-SHA256 under a random key kept in
// LedgerKeyPath(path), so an edit by anyone without the key is detected.
// Whoever holds the key can rewrite the file consistently; the coordinator
// therefore also binds the ledger to its model store (the newest released
// round and its hash must be recorded).
//
// A file that exists is never silently replaced: an empty or truncated
// file is reported as corrupt, not treated as a new ledger.
//
// A Ledger is safe for concurrent use (a coordinator charges rounds while
// its status reads the epsilon spent), but a ledger file must be owned by
// one process: the package does not lock the file.
type Ledger struct {
	path string
	key  []byte

	mu   sync.Mutex // guards snap and acc
	snap LedgerSnapshot
	acc  *Accountant // RDP of all entries
}

// OpenLedger opens the ledger file at path for subject, creating it with an
// empty history if it does not exist. An existing file must be intact and
// record the same subject and budget; otherwise the error wraps
// ErrLedgerCorrupt or ErrLedgerMismatch and names both values.
//
// The file's MAC key lives beside it in path+".key" (LedgerKeyPath),
// created with the ledger; an existing ledger without its key is corrupt.
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
		if l.key, err = loadOrCreateKey(LedgerKeyPath(path)); err != nil {
			return nil, err
		}
		l.snap = LedgerSnapshot{Subject: subject, Budget: budget, Entries: []LedgerEntry{}}
		if err := l.persist(); err != nil {
			return nil, err
		}
		return l, nil
	case err != nil:
		return nil, fmt.Errorf("dp: opening ledger: %w", err)
	}
	if l.key, err = readKey(LedgerKeyPath(path)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	snap, acc, err := decodeLedger(data, l.key)
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
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.project(0, ev)
}

func (l *Ledger) project(round uint64, ev Event) (eps, order float64, err error) {
	if err := validateChargeEvent(ev); err != nil {
		return 0, 0, err
	}
	if r := l.snap.Unprotected(); len(r) > 0 {
		return 0, 0, fmt.Errorf("%w: %s released round %d without differential privacy", ErrNotPrivate, l.snap.Subject, r[0])
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

// Charge records round as having run ev, and persists the ledger: what a
// device records for a round it contributes to. It is ChargeRound without
// the round's parameters.
func (l *Ledger) Charge(round uint64, ev Event) (LedgerEntry, error) {
	return l.ChargeRound(RoundCharge{Round: round, Event: ev})
}

// RoundCharge is one round to record: its event and, at the coordinator,
// the parameters the round ran with.
type RoundCharge struct {
	Round uint64
	// Event is what the round cost. Ignored when Unprotected.
	Event Event
	// Unprotected records a round released without differential privacy:
	// nothing is charged, but the subject can never again be charged a
	// private round (ErrNotPrivate), and every report shows it.
	Unprotected bool
	// The round's parameters: clip norm C, m_min, tolerated devices t_dev
	// and the number of updates in the released sum. All zero in a
	// device's ledger.
	ClipNorm         float64
	MinParticipants  int
	ToleratedDevices int
	Participants     int
	// Time is when the round was charged (zero: not recorded).
	Time time.Time
}

func (rc RoundCharge) entry() LedgerEntry {
	e := LedgerEntry{Round: rc.Round, Mechanism: MechanismNone, ClipNorm: rc.ClipNorm,
		MinParticipants: rc.MinParticipants, ToleratedDevices: rc.ToleratedDevices, Participants: rc.Participants}
	if !rc.Unprotected {
		e.Mechanism = rc.Event.Mechanism.String()
		e.SamplingRate, e.NoiseMultiplier, e.Steps = rc.Event.SamplingRate, rc.Event.NoiseMultiplier, rc.Event.Steps
	}
	if !rc.Time.IsZero() {
		e.Time = rc.Time.UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	return e
}

// sameCharge reports whether a recorded entry is the charge e, ignoring
// when it was recorded and what it released.
func sameCharge(a, b LedgerEntry) bool {
	a.Time, a.ModelSHA256, a.Epsilon, a.Order = "", "", 0, 0
	b.Time, b.ModelSHA256, b.Epsilon, b.Order = "", "", 0, 0
	return a == b
}

// ChargeRound records a round and persists the ledger. It refuses (with a
// *BudgetError, errors.Is ErrBudgetExhausted) a round that would exceed
// the budget, and any private round once an unprotected one is recorded
// (ErrNotPrivate); nothing is recorded then.
//
// ChargeRound is idempotent: charging a round that is already recorded with
// the same event and parameters returns the recorded entry and changes
// nothing, so a retried charge never counts twice. A recorded round with a
// different charge, or a new round older than the last recorded one, is
// ErrRoundConflict.
func (l *Ledger) ChargeRound(rc RoundCharge) (LedgerEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := rc.entry()
	if err := validateDetails(e); err != nil {
		return LedgerEntry{}, fmt.Errorf("%w: round %d: %v", ErrInvalidParameter, rc.Round, err)
	}
	entries := l.snap.Entries
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Round >= rc.Round })
	if i < len(entries) {
		if entries[i].Round == rc.Round {
			if sameCharge(entries[i], e) {
				return entries[i], nil
			}
			return LedgerEntry{}, fmt.Errorf("%w: round %d of %s was charged with %+v, now %+v", ErrRoundConflict, rc.Round, l.snap.Subject, entries[i], e)
		}
		return LedgerEntry{}, fmt.Errorf("%w: round %d of %s is older than the last charged round %d", ErrRoundConflict, rc.Round, l.snap.Subject, entries[len(entries)-1].Round)
	}
	if len(entries) >= MaxLedgerEntries {
		return LedgerEntry{}, fmt.Errorf("%w: %d rounds recorded for %s", ErrLedgerFull, len(entries), l.snap.Subject)
	}
	if rc.Unprotected {
		e.Epsilon, e.Order = l.snap.Spent()
	} else {
		eps, order, err := l.project(rc.Round, rc.Event)
		if err != nil {
			return LedgerEntry{}, err
		}
		e.Epsilon, e.Order = eps, order
	}
	l.snap.Entries = append(entries, e)
	if err := l.persist(); err != nil {
		l.snap.Entries = entries[:len(entries):len(entries)]
		return LedgerEntry{}, err
	}
	if !rc.Unprotected {
		if err := l.acc.Compose(rc.Event); err != nil { // cannot fail: project validated the event
			return LedgerEntry{}, err
		}
	}
	return e, nil
}

// RecordRelease records the SHA-256 (lower-case hex) of the parameters
// round released. It is idempotent; a different hash for a round that has
// one, or a round not in the ledger, is ErrRoundConflict.
func (l *Ledger) RecordRelease(round uint64, modelSHA256 string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	entries := l.snap.Entries
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Round >= round })
	if i == len(entries) || entries[i].Round != round {
		return fmt.Errorf("%w: round %d of %s released a model but was never charged", ErrRoundConflict, round, l.snap.Subject)
	}
	switch entries[i].ModelSHA256 {
	case modelSHA256:
		return nil
	case "":
	default:
		return fmt.Errorf("%w: round %d of %s released %s, now %s", ErrRoundConflict, round, l.snap.Subject, entries[i].ModelSHA256, modelSHA256)
	}
	e := entries[i]
	e.ModelSHA256 = modelSHA256
	if err := validateDetails(e); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidParameter, err)
	}
	l.snap.Entries = append([]LedgerEntry(nil), entries...)
	l.snap.Entries[i] = e
	if err := l.persist(); err != nil {
		l.snap.Entries = entries
		return err
	}
	return nil
}

// Last returns the newest entry, and false if there is none.
func (l *Ledger) Last() (LedgerEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.snap.Entries) == 0 {
		return LedgerEntry{}, false
	}
	return l.snap.Entries[len(l.snap.Entries)-1], true
}

// Entry returns the entry of round, and false if the round is not recorded.
func (l *Ledger) Entry(round uint64) (LedgerEntry, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	entries := l.snap.Entries
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Round >= round })
	if i < len(entries) && entries[i].Round == round {
		return entries[i], true
	}
	return LedgerEntry{}, false
}

// Unprotected returns the rounds recorded as released without differential privacy.
func (l *Ledger) Unprotected() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snap.Unprotected()
}

// Spent returns the epsilon spent so far at the budget's delta, and the
// RDP order that gives it (0, 0 before the first round).
func (l *Ledger) Spent() (eps, order float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.snap.Spent()
}

// Remaining returns the budget's epsilon minus the epsilon spent.
func (l *Ledger) Remaining() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	eps, _ := l.snap.Spent()
	return l.snap.Budget.Epsilon - eps
}

// Subject returns the ledger's subject.
func (l *Ledger) Subject() string { return l.snap.Subject } // fixed when opened

// Budget returns the ledger's budget.
func (l *Ledger) Budget() Budget { return l.snap.Budget } // fixed when opened

// Path returns the ledger file's path.
func (l *Ledger) Path() string { return l.path }

// Entries returns a copy of the recorded rounds, oldest first.
func (l *Ledger) Entries() []LedgerEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]LedgerEntry(nil), l.snap.Entries...)
}

// ledgerWriteCap is the largest ledger file persist writes: what ReadLedger and OpenLedger read.
// A variable so that a test can lower it; MaxLedgerBytes is chosen so that a ledger of
// MaxLedgerEntries entries never reaches it.
var ledgerWriteCap = MaxLedgerBytes

func (l *Ledger) persist() error {
	data, err := l.snap.Encode(l.key)
	if err != nil {
		return err
	}
	// Never write a file that could not be read back: the next start would call it corrupt.
	if len(data) > ledgerWriteCap {
		return fmt.Errorf("%w: %s would take %d bytes, over the %d a ledger file may hold", ErrLedgerFull, l.snap.Subject, len(data), ledgerWriteCap)
	}
	if err := writeFileAtomic(l.path, data); err != nil {
		return fmt.Errorf("dp: writing ledger %s: %w", l.path, err)
	}
	return nil
}
