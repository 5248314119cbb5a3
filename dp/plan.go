package dp

import (
	"errors"
	"fmt"
	"math"
)

// PlanConfig asks for the smallest noise multiplier that keeps a training
// run of Rounds rounds within an (Epsilon, Delta) budget, when each round
// samples ClientsPerRound of Population enrolled users in expectation
// (user-level accounting with q = ClientsPerRound/Population, or the
// higher InclusionRate when rounds need MinParticipants).
type PlanConfig struct {
	Epsilon         float64 // target epsilon, > 0
	Delta           float64 // target delta, in (0, 1)
	Population      int     // enrolled users (devices), >= 1
	ClientsPerRound int     // expected participants per round, in [1, Population]
	Rounds          int     // rounds of training, >= 1
	// MinParticipants is m_min: a draw of fewer devices is drawn again,
	// which raises q to InclusionRate. Zero: q = ClientsPerRound/Population.
	MinParticipants int
	Options         Options // accounting options (zero value = defaults)
	// Mechanism is the analysis of each round (zero value PoissonHidden;
	// Vigil's ledgers charge KnownParticipation).
	Mechanism Mechanism
	// Tolerance is the relative width at which the search for z stops:
	// the returned z exceeds the smallest feasible z by at most
	// Tolerance·z. Zero means 1e-6.
	Tolerance float64
}

// PlanResult is the answer of Plan.
type PlanResult struct {
	SamplingRate    float64 // q: InclusionRate(ClientsPerRound, Population, MinParticipants)
	NoiseMultiplier float64 // smallest z found that meets the budget
	Epsilon         float64 // epsilon of Rounds rounds at that z (<= target)
	Order           float64 // optimal RDP order at that z
	// AtLowerLimit is true when even the smallest z searched meets the
	// budget, so the true minimum may be lower. The search halves z from 1
	// while it stays at least 0.01, so that z is 2^-6 = 0.015625.
	AtLowerLimit bool
}

func (c PlanConfig) validate() (PlanConfig, error) {
	if err := (Budget{Epsilon: c.Epsilon, Delta: c.Delta}).Validate(); err != nil {
		return c, err
	}
	if _, err := InclusionRate(c.ClientsPerRound, c.Population, c.MinParticipants); err != nil {
		return c, err
	}
	if c.Rounds < 1 {
		return c, paramErr("rounds", c.Rounds, ">= 1")
	}
	if c.Mechanism != PoissonHidden && c.Mechanism != KnownParticipation {
		return c, paramErr("mechanism", c.Mechanism, `"poisson-hidden" or "known-participation"`)
	}
	if c.Tolerance == 0 {
		c.Tolerance = 1e-6
	}
	if !(c.Tolerance > 0 && c.Tolerance < 0.5) {
		return c, paramErr("plan tolerance", c.Tolerance, "in (0, 0.5)")
	}
	o, err := c.Options.validate()
	if err != nil {
		return c, err
	}
	c.Options = o
	return c, nil
}

// Plan finds the smallest noise multiplier z in [2^-6, 2^13] such that
// Rounds rounds at q = InclusionRate(ClientsPerRound, Population,
// MinParticipants) stay within the budget.
//
// Epsilon decreases as z grows, so Plan brackets the answer by doubling
// (or halving) z from 1, within [0.01, 10^4]: the powers of two from
// 2^-6 = 0.015625 to 2^13 = 8192. It then bisects until the bracket is
// narrower than Tolerance·z. The returned z always satisfies the budget; it
// is at most Tolerance·z above the smallest z that does. If even 2^-6 meets
// the budget, Plan returns it with AtLowerLimit set. An unreachable budget
// (even z = 2^13 exceeds it) is an error.
func Plan(cfg PlanConfig) (PlanResult, error) {
	c, err := cfg.validate()
	if err != nil {
		return PlanResult{}, err
	}
	q, _ := InclusionRate(c.ClientsPerRound, c.Population, c.MinParticipants) // validated
	// epsAt returns +Inf for a z whose epsilon is not finite: such a z
	// does not meet the budget.
	epsAt := func(z float64) (eps, order float64, err error) {
		r, err := RDP(Event{SamplingRate: q, NoiseMultiplier: z, Steps: c.Rounds, Mechanism: c.Mechanism}, c.Options.Orders, c.Options.Series)
		if err != nil {
			return 0, 0, err
		}
		eps, order, err = EpsilonFromRDP(c.Options.Orders, r, c.Delta, c.Options.Conversion)
		if errors.Is(err, ErrNoFiniteEpsilon) {
			return math.Inf(1), 0, nil
		}
		return eps, order, err
	}
	meets := func(z float64) (bool, PlanResult, error) {
		eps, order, err := epsAt(z)
		if err != nil {
			return false, PlanResult{}, err
		}
		return eps <= c.Epsilon, PlanResult{SamplingRate: q, NoiseMultiplier: z, Epsilon: eps, Order: order}, nil
	}

	// Bracket: lo fails the budget, hi meets it.
	lo, hi := 0.0, 1.0
	ok, best, err := meets(hi)
	if err != nil {
		return PlanResult{}, err
	}
	if ok {
		for {
			z := hi / 2
			if z < minPlanNoise {
				best.AtLowerLimit = true
				return best, nil
			}
			okz, r, err := meets(z)
			if err != nil {
				return PlanResult{}, err
			}
			if !okz {
				lo = z
				break
			}
			hi, best = z, r
		}
	} else {
		for {
			lo = hi
			hi *= 2
			if hi > maxPlanNoise {
				return PlanResult{}, fmt.Errorf("%w: epsilon budget %g at delta %g is not reachable in %d rounds at q = %g with any noise multiplier up to %g",
					ErrBudgetExhausted, c.Epsilon, c.Delta, c.Rounds, q, lo)
			}
			okz, r, err := meets(hi)
			if err != nil {
				return PlanResult{}, err
			}
			if okz {
				best = r
				break
			}
		}
	}
	for hi-lo > c.Tolerance*hi {
		mid := lo + (hi-lo)/2
		okz, r, err := meets(mid)
		if err != nil {
			return PlanResult{}, err
		}
		if okz {
			hi, best = mid, r
		} else {
			lo = mid
		}
	}
	return best, nil
}
