package dp

import "math"

// Budget is an (epsilon, delta) privacy budget: the total privacy loss a
// ledger lets its subject incur, measured as epsilon at a fixed delta.
type Budget struct {
	Epsilon float64 `json:"epsilon"` // > 0, finite
	Delta   float64 `json:"delta"`   // in (0, 1)
}

// Validate reports a *ParamError if Epsilon is not a positive finite number
// or Delta is outside (0, 1).
func (b Budget) Validate() error {
	if !(b.Epsilon > 0) || math.IsInf(b.Epsilon, 1) {
		return paramErr("epsilon budget", b.Epsilon, "a finite number > 0")
	}
	return validateDelta(b.Delta)
}
