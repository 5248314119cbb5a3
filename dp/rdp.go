package dp

import (
	"fmt"
	"math"
)

// Series selects how log(A_α) is summed at fractional orders α. Integer
// orders always use the exact finite binomial sum.
//
// Notation (Mironov, Talwar, Zhang 2019, "Rényi Differential Privacy of the
// Sampled Gaussian Mechanism", Sec. 3.3): one step of the subsampled
// Gaussian with rate q and noise multiplier σ has RDP log(A_α)/(α-1) at
// order α, where A_α = E_{x~N(0,σ²)}[((1-q) + q·exp((2x-1)/(2σ²)))^α].
type Series int

const (
	// SeriesBound sums the absolute values of the binomial terms, an upper
	// bound on A_α, and stops when both tails decrease and lie 30 nats below
	// the total, with at most 1000 terms (an order that has not converged by
	// then is excluded). This is what Google's dp_accounting computes today.
	// It is the default.
	SeriesBound Series = iota
	// SeriesSigned sums the binomial terms with their signs and stops at the
	// first term below e^-30, as Opacus and TF-Privacy's rdp_accountant.py
	// do. An order whose partial sums turn negative (cancellation) or that
	// has not converged after 200,000 terms is excluded.
	SeriesSigned
)

// String returns "bound" or "signed".
func (s Series) String() string {
	switch s {
	case SeriesBound:
		return "bound"
	case SeriesSigned:
		return "signed"
	}
	return fmt.Sprintf("Series(%d)", int(s))
}

// ParseSeries parses "bound" or "signed".
func ParseSeries(name string) (Series, error) {
	switch name {
	case "bound", "":
		return SeriesBound, nil
	case "signed":
		return SeriesSigned, nil
	}
	return 0, paramErr("fractional series", fmt.Sprintf("%q", name), `"bound" or "signed"`)
}

// RDP returns the Rényi DP of ev at each order: T times the RDP of one step
// of the Poisson-subsampled Gaussian mechanism. Orders at which the series
// does not converge get +Inf, which the conversions to (epsilon, delta)
// ignore.
func RDP(ev Event, orders []float64, series Series) ([]float64, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	if err := validateOrders(orders); err != nil {
		return nil, err
	}
	if series != SeriesBound && series != SeriesSigned {
		return nil, paramErr("fractional series", series, `"bound" or "signed"`)
	}
	out := make([]float64, len(orders))
	if ev.Steps == 0 {
		return out, nil
	}
	for i, a := range orders {
		if ev.Mechanism == KnownParticipation {
			out[i] = float64(ev.Steps) * rdpKnownParticipation(ev.SamplingRate, ev.NoiseMultiplier, a)
			continue
		}
		out[i] = float64(ev.Steps) * rdpOneStep(ev.SamplingRate, ev.NoiseMultiplier, a, series)
	}
	return out, nil
}

// rdpKnownParticipation is the RDP at order a of one step when the
// adversary sees whether the user took part. The output is the pair
// (participated, Y); it is identical under both neighbours when the user
// did not take part (probability 1-q), and a Gaussian shifted by at most C
// with noise z·C when it did, whose Rényi divergence is a/(2z²). So
// exp((a-1)·D_a) = 1 - q + q·exp((a-1)·a/(2z²)), in both directions.
func rdpKnownParticipation(q, sigma, a float64) float64 {
	gauss := a / (2 * sigma * sigma)
	if q == 1 {
		return gauss
	}
	return logAdd(math.Log1p(-q), math.Log(q)+(a-1)*gauss) / (a - 1)
}

// rdpOneStep is the RDP of one step at order a. Inputs are validated.
func rdpOneStep(q, sigma, a float64, series Series) float64 {
	if q == 1 {
		return a / (2 * sigma * sigma)
	}
	var logA float64
	switch {
	case isInteger(a):
		logA = logAInt(q, sigma, int(a))
	case series == SeriesSigned:
		logA = logAFracSigned(q, sigma, a)
	default:
		logA = logAFracBound(q, sigma, a)
	}
	return logA / (a - 1)
}

// logAInt is log(A_α) for integer α: a finite sum of α+1 positive terms
// C(α,i) q^i (1-q)^(α-i) exp((i²-i)/(2σ²)). It sums exp(s_i - max s)
// rather than chaining log-additions: the same value to rounding, at one
// exponential per term. α <= MaxOrder, so the log-factorial table covers it.
func logAInt(q, sigma float64, alpha int) float64 {
	lf := logFactorials()
	logq, log1mq := math.Log(q), math.Log1p(-q)
	inv2s2 := 1 / (2 * sigma * sigma)
	term := func(i int) float64 {
		fi := float64(i)
		s := lf[alpha] - lf[i] - lf[alpha-i] + fi*logq + float64(alpha-i)*log1mq
		if i >= 2 { // avoid 0·Inf when σ is so small that 1/(2σ²) overflows
			s += (fi*fi - fi) * inv2s2
		}
		return s
	}
	maxS, maxI := math.Inf(-1), 0
	for i := 0; i <= alpha; i++ {
		if s := term(i); s > maxS {
			maxS, maxI = s, i
		}
	}
	if math.IsInf(maxS, 0) {
		return maxS
	}
	// log A = maxS + log1p(Σ_{i≠maxI} exp(s_i - maxS)): log1p keeps the
	// digits of the small remainder, which is all there is of log A when q
	// is tiny (log A ≈ 1e-12 for q = 1e-6).
	rest := 0.0
	for i := 0; i <= alpha; i++ {
		if i != maxI {
			rest += math.Exp(term(i) - maxS)
		}
	}
	return maxS + math.Log1p(rest)
}

// fracTerms computes the i-th pair of terms of the fractional series: the
// contributions of the integrals over (-∞, z0] and [z0, ∞), in log space,
// without the sign of the binomial coefficient.
type fracTerms struct {
	alpha, sigma, logq, log1mq, z0, inv2s2, lgN1 float64
	lf                                           []float64
}

func newFracTerms(q, sigma, alpha float64) fracTerms {
	lgN1, _ := math.Lgamma(alpha + 1)
	log1mq := math.Log1p(-q)
	logq := math.Log(q)
	return fracTerms{
		alpha: alpha, sigma: sigma, logq: logq, log1mq: log1mq,
		z0:     sigma*sigma*(log1mq-logq) + 0.5, // σ² log(1/q - 1) + 1/2
		inv2s2: 1 / (2 * sigma * sigma),
		lgN1:   lgN1,
		lf:     logFactorials(),
	}
}

func (f *fracTerms) at(i int) (s0, s1 float64) {
	fi := float64(i)
	j := f.alpha - fi
	lc := logAbsBinom(f.lf, f.lgN1, f.alpha, i)
	t0 := lc + fi*f.logq + j*f.log1mq
	t1 := lc + j*f.logq + fi*f.log1mq
	e0 := -math.Ln2 + logErfc((fi-f.z0)/(math.Sqrt2*f.sigma))
	e1 := -math.Ln2 + logErfc((f.z0-j)/(math.Sqrt2*f.sigma))
	return t0 + (fi*fi-fi)*f.inv2s2 + e0, t1 + (j*j-j)*f.inv2s2 + e1
}

// logAFracBound is the conservative series of dp_accounting: absolute values
// of the terms, stopping once both tails decrease and are 30 nats below the
// running total; +Inf if that has not happened after maxStepsBoundSeries terms.
func logAFracBound(q, sigma, alpha float64) float64 {
	f := newFracTerms(q, sigma, alpha)
	logA0, logA1 := math.Inf(-1), math.Inf(-1)
	last0, last1 := math.Inf(-1), math.Inf(-1)
	for i := 0; i < maxStepsBoundSeries; i++ {
		s0, s1 := f.at(i)
		if math.IsNaN(s0) || math.IsNaN(s1) {
			return math.Inf(1) // σ or q at the edge of float64: exclude the order
		}
		logA0 = logAdd(logA0, s0)
		logA1 = logAdd(logA1, s1)
		if s0 < last0 && s1 < last1 {
			// total >= max(logA0, logA1), so the cheap test implies the
			// exact one; the log-addition runs only when it is needed.
			m := math.Max(s0, s1)
			if m < math.Max(logA0, logA1)-30 {
				return logAdd(logA0, logA1)
			}
			if total := logAdd(logA0, logA1); m < total-30 {
				return total
			}
		}
		last0, last1 = s0, s1
	}
	return math.Inf(1)
}

// logAFracSigned is the signed series of Opacus and TF-Privacy: terms carry
// the sign of C(α, i), which is negative when an odd number of the factors
// α, α-1, ..., α-i+1 are negative; the sum stops at the first term below
// e^-30. It returns +Inf if cancellation makes a partial sum negative or
// the series has not converged after maxStepsSignedSeries terms.
func logAFracSigned(q, sigma, alpha float64) float64 {
	f := newFracTerms(q, sigma, alpha)
	logA0, logA1 := math.Inf(-1), math.Inf(-1)
	firstNegative := int(math.Floor(alpha)) + 1 // smallest k with α-k < 0
	for i := 0; i < maxStepsSignedSeries; i++ {
		s0, s1 := f.at(i)
		if math.IsNaN(s0) || math.IsNaN(s1) {
			return math.Inf(1)
		}
		negatives := i - firstNegative // factors α-k < 0 for k in [firstNegative, i)
		if negatives > 0 && negatives%2 == 1 {
			var ok0, ok1 bool
			logA0, ok0 = logSub(logA0, s0)
			logA1, ok1 = logSub(logA1, s1)
			if !ok0 || !ok1 {
				return math.Inf(1)
			}
		} else {
			logA0 = logAdd(logA0, s0)
			logA1 = logAdd(logA1, s1)
		}
		if math.Max(s0, s1) < -30 {
			return logAdd(logA0, logA1)
		}
	}
	return math.Inf(1)
}
