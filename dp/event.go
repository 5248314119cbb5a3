package dp

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mathext"
)

// Event is T steps of a sampled Gaussian mechanism: in each step every user
// takes part independently with probability SamplingRate, the participants'
// contributions (each clipped to L2 norm C) are summed, and Gaussian noise
// of standard deviation NoiseMultiplier·C is added to the sum. Mechanism
// says what the adversary is assumed to know about who took part, and so
// which analysis applies. One federated round of Vigil is one step of
// KnownParticipation (see the package documentation for why).
type Event struct {
	SamplingRate    float64   // q, in (0, 1]
	NoiseMultiplier float64   // z, noise stddev over clip norm, > 0
	Steps           int       // T, >= 0
	Mechanism       Mechanism // default PoissonHidden
}

// Mechanism names the analysis of an Event.
type Mechanism int

const (
	// PoissonHidden is the Poisson-subsampled Gaussian under add-or-remove
	// adjacency when nobody learns who was sampled: privacy amplification
	// by sampling applies in full (Mironov, Talwar, Zhang 2019). It is what
	// dp_accounting, Opacus and TF-Privacy compute, and the default.
	PoissonHidden Mechanism = iota
	// KnownParticipation is the same sampling and noise when the adversary
	// learns, for every step, whether the user took part (an aggregator
	// sees who sends an update), under zero-out adjacency. The joint law of
	// (participation, output) gives RDP
	// log(1 - q + q·exp((α-1)·α/(2z²)))/(α-1) per step: amplification by
	// q, not by q². Vigil's rounds are charged with it.
	KnownParticipation
)

// String returns "poisson-hidden" or "known-participation".
func (m Mechanism) String() string {
	switch m {
	case PoissonHidden:
		return "poisson-hidden"
	case KnownParticipation:
		return "known-participation"
	}
	return fmt.Sprintf("Mechanism(%d)", int(m))
}

// ParseMechanism parses the names String returns.
func ParseMechanism(name string) (Mechanism, error) {
	switch name {
	case "poisson-hidden", "":
		return PoissonHidden, nil
	case "known-participation":
		return KnownParticipation, nil
	}
	return 0, paramErr("mechanism", fmt.Sprintf("%q", name), `"poisson-hidden" or "known-participation"`)
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
	if e.Mechanism != PoissonHidden && e.Mechanism != KnownParticipation {
		return paramErr("mechanism", e.Mechanism, `"poisson-hidden" or "known-participation"`)
	}
	return nil
}

// String formats the event as Q:Z:T, the syntax of `vigil privacy epsilon
// --event`, with ":known" appended for KnownParticipation.
func (e Event) String() string {
	s := fmt.Sprintf("%v:%v:%d", e.SamplingRate, e.NoiseMultiplier, e.Steps)
	if e.Mechanism == KnownParticipation {
		s += ":known"
	}
	return s
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

// InclusionRate returns the probability that a given device is in a round's
// sample when each of population devices is drawn independently with
// probability q = expectedPerRound/population and a draw of fewer than
// minSampled devices is thrown away and drawn again, as the coordinator
// does:
//
//	q · P[Binomial(N-1, q) >= m_min-1] / P[Binomial(N, q) >= m_min]
//
// (a device is in a kept draw when it is drawn and at least m_min-1 of the
// others are). It is at least q, and well above it when m_min is near the
// expected count: 1.23 q for N = 1,000, K = m_min = 10. This, not q, is the
// sampling rate a round is charged with.
func InclusionRate(expectedPerRound, population, minSampled int) (float64, error) {
	q, err := UserLevelSamplingRate(expectedPerRound, population)
	if err != nil {
		return 0, err
	}
	if minSampled < 0 || minSampled > population {
		return 0, paramErr("minimum sampled per round", minSampled, fmt.Sprintf("in [0, population = %d]", population))
	}
	switch {
	case q == 1 || minSampled == 0:
		return q, nil // every draw is kept
	case minSampled == 1:
		// Only the empty draw is thrown away: q / P[Binomial(N, q) >= 1].
		return q / -math.Expm1(float64(population)*math.Log1p(-q)), nil
	}
	// P[Binomial(n, p) >= k] = I_p(k, n-k+1), the regularised incomplete beta function,
	// which keeps its precision far into the tail where 1 - CDF would cancel to zero.
	atLeast := func(n, k int) float64 { return mathext.RegIncBeta(float64(k), float64(n-k+1), q) }
	kept := atLeast(population, minSampled)
	if !(kept > 0) {
		return 0, paramErr("minimum sampled per round", minSampled,
			fmt.Sprintf("reachable: a draw of %d of %d devices at rate %v almost never has that many", expectedPerRound, population, q))
	}
	return min(1, q*atLeast(population-1, minSampled-1)/kept), nil
}

func validateDelta(delta float64) error {
	if !(delta >= minDelta && delta < 1) {
		return paramErr("delta", delta, "in [2^-1022, 1)")
	}
	return nil
}

// minDelta is the smallest normal float64. Below it math.Log is wrong on amd64 (golang/go#56600:
// log(1e-320) is -709.09, not -736.83), which made epsilon too small; no deployment needs a
// delta that small.
const minDelta = 0x1p-1022
