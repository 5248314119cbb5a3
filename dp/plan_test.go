package dp_test

import (
	"errors"
	"math"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

func TestPlanFindsSmallestNoise(t *testing.T) {
	for _, cfg := range []dp.PlanConfig{
		{Epsilon: 8, Delta: 1e-6, Population: 100000, ClientsPerRound: 1000, Rounds: 1000},
		{Epsilon: 1, Delta: 1e-5, Population: 60000, ClientsPerRound: 150, Rounds: 6000},
		{Epsilon: 3, Delta: 1e-7, Population: 5000, ClientsPerRound: 50, Rounds: 200, Options: dp.Options{Conversion: dp.ConversionClassic}},
	} {
		res, err := dp.Plan(cfg)
		if err != nil {
			t.Fatal(err)
		}
		q := float64(cfg.ClientsPerRound) / float64(cfg.Population)
		eps := func(z float64) float64 {
			e, _, err := dp.Epsilon([]dp.Event{{SamplingRate: q, NoiseMultiplier: z, Steps: cfg.Rounds}}, cfg.Delta, cfg.Options)
			if err != nil {
				t.Fatal(err)
			}
			return e
		}
		if res.SamplingRate != q || res.Epsilon > cfg.Epsilon || eps(res.NoiseMultiplier) != res.Epsilon {
			t.Errorf("%+v: %+v does not meet the budget", cfg, res)
		}
		// Just below the tolerance the budget must fail.
		if below := res.NoiseMultiplier * (1 - 2e-6); eps(below) <= cfg.Epsilon {
			t.Errorf("%+v: z = %v also meets the budget; plan returned %v", cfg, below, res.NoiseMultiplier)
		}
		t.Logf("eps %g delta %g q %g T %d: z = %.7g gives eps %.7g (order %v)", cfg.Epsilon, cfg.Delta, q, cfg.Rounds, res.NoiseMultiplier, res.Epsilon, res.Order)
	}
}

// TestPlanMatchesOpacus: opacus/tests/accountants_test.py
// test_get_noise_multiplier_rdp_epochs finds z ≈ 1.416 for epsilon 8,
// delta 1e-5, q 0.04, 90 epochs (2250 steps) with a search that stops at
// a bracket of width 0.01; the exact minimum must lie within that width.
func TestPlanMatchesOpacus(t *testing.T) {
	res, err := dp.Plan(dp.PlanConfig{Epsilon: 8, Delta: 1e-5, Population: 100, ClientsPerRound: 4, Rounds: 2250,
		Options: dp.Options{Orders: dp.OpacusOrders(), Series: dp.SeriesSigned}})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.NoiseMultiplier-1.416) > 0.01 {
		t.Errorf("z = %v, want 1.416 ± 0.01", res.NoiseMultiplier)
	}
	t.Logf("z = %.7g (Opacus: 1.416)", res.NoiseMultiplier)
}

func TestPlanLimitsAndErrors(t *testing.T) {
	// A generous budget is met by the smallest z searched.
	res, err := dp.Plan(dp.PlanConfig{Epsilon: 1e6, Delta: 1e-5, Population: 1000000, ClientsPerRound: 1, Rounds: 1})
	if err != nil || !res.AtLowerLimit {
		t.Errorf("res %+v err %v: want AtLowerLimit", res, err)
	}
	for _, cfg := range []dp.PlanConfig{
		{Epsilon: 0, Delta: 1e-5, Population: 10, ClientsPerRound: 1, Rounds: 1},
		{Epsilon: 1, Delta: 2, Population: 10, ClientsPerRound: 1, Rounds: 1},
		{Epsilon: 1, Delta: 1e-5, Population: 10, ClientsPerRound: 11, Rounds: 1},
		{Epsilon: 1, Delta: 1e-5, Population: 10, ClientsPerRound: 1, Rounds: 0},
		{Epsilon: 1, Delta: 1e-5, Population: 10, ClientsPerRound: 1, Rounds: 1, Tolerance: -1},
	} {
		if _, err := dp.Plan(cfg); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("%+v: err = %v", cfg, err)
		}
	}
	// An unreachable budget: q = 1, a million rounds, epsilon 1e-3.
	_, err = dp.Plan(dp.PlanConfig{Epsilon: 1e-3, Delta: 1e-10, Population: 1, ClientsPerRound: 1, Rounds: 1000000})
	if !errors.Is(err, dp.ErrBudgetExhausted) {
		t.Errorf("unreachable budget: err = %v", err)
	}
}

func TestEpsilonCurve(t *testing.T) {
	const rounds = 50
	curve, err := dp.EpsilonCurve(0.01, 1.1, rounds, 1e-6, dp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(curve) != rounds {
		t.Fatalf("%d points", len(curve))
	}
	for _, r := range []int{1, 17, rounds} {
		want, _, err := dp.Epsilon([]dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: r}}, 1e-6, dp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(curve[r-1]-want) > 1e-12*want {
			t.Errorf("round %d: curve %v, Epsilon %v", r, curve[r-1], want)
		}
	}
	for i := 1; i < rounds; i++ {
		if curve[i] < curve[i-1] {
			t.Errorf("curve falls at round %d", i+1)
		}
	}
	if _, err := dp.EpsilonCurve(0.01, 1.1, 0, 1e-6, dp.Options{}); !errors.Is(err, dp.ErrInvalidParameter) {
		t.Errorf("rounds 0: %v", err)
	}
}

// TestPlanAndCurveOfKnownParticipation: planning and curves for the
// mechanism Vigil charges agree with the accountant, and ask for more noise
// than the hidden-sampling analysis.
func TestPlanAndCurveOfKnownParticipation(t *testing.T) {
	cfg := dp.PlanConfig{Epsilon: 8, Delta: 1e-5, Population: 200, ClientsPerRound: 50, Rounds: 20}
	hidden, err := dp.Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mechanism = dp.KnownParticipation
	known, err := dp.Plan(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ev := dp.Event{SamplingRate: 0.25, NoiseMultiplier: known.NoiseMultiplier, Steps: 20, Mechanism: dp.KnownParticipation}
	eps, _, err := dp.Epsilon([]dp.Event{ev}, 1e-5, dp.Options{})
	if err != nil || eps > 8 || eps != known.Epsilon || !(known.NoiseMultiplier > hidden.NoiseMultiplier) {
		t.Fatalf("known: z %v epsilon %v (recomputed %v, %v); hidden z %v", known.NoiseMultiplier, known.Epsilon, eps, err, hidden.NoiseMultiplier)
	}
	curve, err := dp.EpsilonCurveOf(ev, 20, 1e-5, dp.Options{})
	if err != nil || math.Abs(curve[19]-eps) > 1e-12*eps {
		t.Fatalf("curve ends at %v, want %v (%v)", curve[len(curve)-1], eps, err)
	}
	cfg.Mechanism = 7
	if _, err := dp.Plan(cfg); !errors.Is(err, dp.ErrInvalidParameter) {
		t.Fatalf("unknown mechanism: %v", err)
	}
}
