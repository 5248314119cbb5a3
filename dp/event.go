package dp

import (
	"fmt"
	"math"
)

// Event is T steps of the Poisson-subsampled Gaussian mechanism: in each
// step every user takes part independently with probability SamplingRate,
// the participants' contributions (each clipped to L2 norm C) are summed,
// and Gaussian noise of standard deviation NoiseMultiplier·C is added to the
// sum. One federated round of Vigil is one step.
type Event struct {
	SamplingRate    float64 // q, in (0, 1]
	NoiseMultiplier float64 // z, noise stddev over clip norm, > 0
	Steps           int     // T, >= 0
}

// Validate reports a *ParamError if the event is outside the domain of the
// accountant: q outside (0, 1], z not a positive finite number, or T < 0.
func (e Event) Validate() error {
	if !(e.SamplingRate > 0 && e.SamplingRate <= 1) {
		return paramErr("sampling rate q", e.SamplingRate, "in (0, 1]")
	}
	if !(e.NoiseMultiplier > 0) || math.IsInf(e.NoiseMultiplier, 1) {
		return paramErr("noise multiplier z", e.NoiseMultiplier, "a finite number > 0")
	}
	if e.Steps < 0 {
		return paramErr("steps T", e.Steps, ">= 0")
	}
	return nil
}

// String formats the event as Q:Z:T, the syntax of `vigil privacy epsilon --event`.
func (e Event) String() string {
	return fmt.Sprintf("%v:%v:%d", e.SamplingRate, e.NoiseMultiplier, e.Steps)
}

// UserLevelSamplingRate returns q = expectedPerRound / population, the
// sampling rate of user-level accounting when each round samples devices
// (one per user) at the rate that gives expectedPerRound participants in
// expectation out of the enrolled population.
func UserLevelSamplingRate(expectedPerRound, population int) (float64, error) {
	if population < 1 {
		return 0, paramErr("enrolled population", population, ">= 1")
	}
	if expectedPerRound < 1 || expectedPerRound > population {
		return 0, paramErr("expected devices per round", expectedPerRound, fmt.Sprintf("in [1, population = %d]", population))
	}
	return float64(expectedPerRound) / float64(population), nil
}

func validateDelta(delta float64) error {
	if !(delta > 0 && delta < 1) {
		return paramErr("delta", delta, "in (0, 1)")
	}
	return nil
}
