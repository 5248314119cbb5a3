package dp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is; the errors
// returned by this package wrap them with the numbers that explain them.
var (
	// ErrInvalidParameter marks a parameter outside its domain (q outside
	// (0, 1], z <= 0, delta outside (0, 1), negative steps, orders <= 1, ...).
	// The concrete error is a *ParamError naming the parameter.
	ErrInvalidParameter = errors.New("dp: invalid parameter")

	// ErrNoFiniteEpsilon means no RDP order gave a finite epsilon: every
	// order overflowed or its series failed to converge. It is returned
	// instead of a silent +Inf.
	ErrNoFiniteEpsilon = errors.New("dp: no RDP order gives a finite epsilon")

	// ErrBudgetExhausted means an event would push a ledger past its epsilon
	// budget. The concrete error is a *BudgetError with the numbers.
	ErrBudgetExhausted = errors.New("dp: privacy budget exhausted")

	// ErrLedgerCorrupt means a ledger file failed its MAC, lacks its key, is not in
	// canonical form, exceeds a size cap, or records epsilons that do not
	// follow from its own entries.
	ErrLedgerCorrupt = errors.New("dp: privacy ledger is corrupt")

	// ErrLedgerMismatch means a ledger file belongs to another subject
	// (model or device), another budget, or another accounting method.
	ErrLedgerMismatch = errors.New("dp: privacy ledger belongs to another subject, budget or accounting method")

	// ErrRoundConflict means a round is charged twice with different events,
	// or a round older than the last charged one is charged for the first time.
	ErrRoundConflict = errors.New("dp: round conflicts with the ledger")

	// ErrNotPrivate means a subject released a round without differential
	// privacy, so no later round can make its releases private: its
	// privacy loss is unbounded.
	ErrNotPrivate = errors.New("dp: subject was trained without differential privacy")

	// ErrLedgerFull means the ledger reached MaxLedgerEntries, or that a round would make its
	// file larger than MaxLedgerBytes, which could not be read back; nothing is recorded.
	ErrLedgerFull = errors.New("dp: privacy ledger is full")
)

// ParamError reports a parameter outside its domain. It unwraps to
// ErrInvalidParameter.
type ParamError struct {
	// Param names the parameter as the package documents it, e.g.
	// "sampling rate q", "noise multiplier z", "delta", "RDP order".
	Param string
	// Value is the offending value, formatted with %v.
	Value any
	// Want says what the value must be, e.g. "in (0, 1]".
	Want string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("dp: %s = %v, must be %s", e.Param, e.Value, e.Want)
}

// Unwrap returns ErrInvalidParameter.
func (e *ParamError) Unwrap() error { return ErrInvalidParameter }

func paramErr(param string, value any, want string) error {
	return &ParamError{Param: param, Value: value, Want: want}
}

// BudgetError reports that charging an event would exceed a budget. It
// unwraps to ErrBudgetExhausted.
type BudgetError struct {
	Subject string  // the ledger's subject, e.g. "model/authnet"
	Round   uint64  // the round that was refused (0 for a Check)
	Spent   float64 // epsilon spent before the event
	After   float64 // epsilon the event would bring the total to
	Budget  Budget  // the ledger's budget
}

func (e *BudgetError) Error() string {
	where := ""
	if e.Round != 0 {
		where = fmt.Sprintf(" round %d", e.Round)
	}
	return fmt.Sprintf("dp: %s%s refused: epsilon would reach %.6g, over the budget of %.6g at delta %g (already spent %.6g)",
		e.Subject, where, e.After, e.Budget.Epsilon, e.Budget.Delta, e.Spent)
}

// Unwrap returns ErrBudgetExhausted.
func (e *BudgetError) Unwrap() error { return ErrBudgetExhausted }
