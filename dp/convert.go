package dp

import (
	"fmt"
	"math"
)

// Conversion selects how an RDP curve becomes an (epsilon, delta) guarantee.
type Conversion int

const (
	// ConversionImproved is the conversion of Balle, Barthe, Gaboardi, Hsu
	// and Sato 2020 ("Hypothesis testing interpretations and Rényi
	// differential privacy", Thm. 21; also Canonne, Kamath, Steinke 2020,
	// Prop. 12): ε = r + log(1 - 1/α) - log(δ·α)/(α-1), used for α > 1.01,
	// together with the KL bound (ε = 0 when δ² > 1 - e^-r), exactly as
	// dp_accounting's compute_epsilon. It is the default.
	ConversionImproved Conversion = iota
	// ConversionClassic is Mironov 2017 ("Rényi Differential Privacy",
	// Prop. 3): ε = r - log(δ)/(α-1).
	ConversionClassic
)

// String returns "improved" or "classic".
func (c Conversion) String() string {
	switch c {
	case ConversionImproved:
		return "improved"
	case ConversionClassic:
		return "classic"
	}
	return fmt.Sprintf("Conversion(%d)", int(c))
}

// ParseConversion parses "improved" or "classic".
func ParseConversion(name string) (Conversion, error) {
	switch name {
	case "improved", "":
		return ConversionImproved, nil
	case "classic":
		return ConversionClassic, nil
	}
	return 0, paramErr("conversion", fmt.Sprintf("%q", name), `"improved" or "classic"`)
}

// negativeRDPTolerance is how far below zero a computed RDP value may fall
// through rounding and still be read as 0. RDP is never negative; a value
// further below zero can only come from a numerical failure, and that order
// is then excluded rather than trusted.
const negativeRDPTolerance = 1e-9

// EpsilonFromRDP converts an RDP curve (rdp[i] at orders[i]) to the smallest
// epsilon, over the orders, such that the mechanism is (epsilon, delta)-DP.
// It returns that epsilon and the order that achieves it (the first such
// order on ties). Orders with +Inf RDP are skipped; if no order gives a
// finite epsilon the error wraps ErrNoFiniteEpsilon.
func EpsilonFromRDP(orders, rdp []float64, delta float64, conv Conversion) (eps, order float64, err error) {
	if err := validateOrders(orders); err != nil {
		return 0, 0, err
	}
	if len(rdp) != len(orders) {
		return 0, 0, paramErr("number of RDP values", len(rdp), fmt.Sprintf("equal to the number of orders (%d)", len(orders)))
	}
	if err := validateDelta(delta); err != nil {
		return 0, 0, err
	}
	if conv != ConversionImproved && conv != ConversionClassic {
		return 0, 0, paramErr("conversion", conv, `"improved" or "classic"`)
	}
	best, bestOrder := math.Inf(1), 0.0
	logDelta := math.Log(delta)
	for i, a := range orders {
		r := rdp[i]
		if math.IsNaN(r) || r < -negativeRDPTolerance {
			continue
		}
		r = math.Max(r, 0)
		var e float64
		switch {
		case math.IsInf(r, 1):
			continue
		case conv == ConversionClassic:
			e = r - logDelta/(a-1)
		case delta*delta+math.Expm1(-r) > 0:
			// KL bound: delta >= sqrt(1 - exp(-KL)) gives (0, delta)-DP.
			e = 0
		case a > 1.01:
			// The bound is numerically unstable as α -> 1, and useless there.
			e = r + math.Log1p(-1/a) - (logDelta+math.Log(a))/(a-1)
		default:
			continue
		}
		if e < best {
			best, bestOrder = e, a
		}
	}
	if math.IsInf(best, 1) {
		return 0, 0, fmt.Errorf("%w (at delta %g over %d orders: every order overflowed or failed to converge)", ErrNoFiniteEpsilon, delta, len(orders))
	}
	return math.Max(best, 0), bestOrder, nil
}
