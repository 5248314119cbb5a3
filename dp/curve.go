package dp

import "fmt"

// EpsilonCurve returns the epsilon spent after each of rounds rounds of the
// subsampled Gaussian with rate q and noise multiplier z, at delta:
// curve[t-1] is the epsilon after t rounds. It computes the one-round RDP
// curve once and scales it, so a curve costs one RDP evaluation plus one
// cheap conversion per round. rounds is capped at MaxCurveRounds.
func EpsilonCurve(q, z float64, rounds int, delta float64, opts Options) ([]float64, error) {
	return EpsilonCurveOf(Event{SamplingRate: q, NoiseMultiplier: z, Steps: 1}, rounds, delta, opts)
}

// EpsilonCurveOf is EpsilonCurve for rounds of one step of step's mechanism,
// sampling rate and noise multiplier (its Steps is ignored).
func EpsilonCurveOf(step Event, rounds int, delta float64, opts Options) ([]float64, error) {
	if rounds < 1 || rounds > MaxCurveRounds {
		return nil, paramErr("rounds", rounds, fmt.Sprintf("in [1, %d]", MaxCurveRounds))
	}
	if err := validateDelta(delta); err != nil {
		return nil, err
	}
	o, err := opts.validate()
	if err != nil {
		return nil, err
	}
	step.Steps = 1
	one, err := RDP(step, o.Orders, o.Series)
	if err != nil {
		return nil, err
	}
	curve := make([]float64, rounds)
	scaled := make([]float64, len(one))
	for t := 1; t <= rounds; t++ {
		for i, r := range one {
			scaled[i] = float64(t) * r
		}
		eps, _, err := EpsilonFromRDP(o.Orders, scaled, delta, o.Conversion)
		if err != nil {
			return nil, fmt.Errorf("after round %d: %w", t, err)
		}
		curve[t-1] = eps
	}
	return curve, nil
}
