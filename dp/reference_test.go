package dp_test

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

// tolerance returns how far a value may be from want, a published decimal:
// a relative 1e-6 when want has 7 or more significant digits, otherwise one
// unit in its last digit ("to the digits shown").
func tolerance(t *testing.T, want string) (value, abs float64) {
	t.Helper()
	v, err := strconv.ParseFloat(want, 64)
	if err != nil {
		t.Fatalf("bad reference %q: %v", want, err)
	}
	mant, exp := want, 0
	if i := strings.IndexAny(want, "eE"); i >= 0 {
		mant = want[:i]
		exp, _ = strconv.Atoi(want[i+1:])
	}
	decimals := 0
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		decimals = len(mant) - i - 1
	}
	sig := len(strings.TrimLeft(strings.NewReplacer(".", "", "-", "").Replace(mant), "0"))
	if sig >= 7 {
		return v, 1e-6 * math.Abs(v)
	}
	return v, math.Pow(10, float64(exp-decimals))
}

func checkClose(t *testing.T, name string, got float64, want string) {
	t.Helper()
	w, tol := tolerance(t, want)
	if d := math.Abs(got - w); !(d <= tol) {
		t.Errorf("%s = %.12g, want %s (±%.3g); off by %.3g", name, got, want, tol, d)
		return
	}
	t.Logf("%s = %.15g, want %s: relative error %.2g", name, got, want, math.Abs(got-w)/math.Abs(w))
}

func rangeOrders(lo, hi int) []float64 {
	var o []float64
	for a := lo; a <= hi; a++ {
		o = append(o, float64(a))
	}
	return o
}

// TestIssueReferenceEpsilons reproduces the reference values of issue 5,
// which come from the public test suites named in each case.
func TestIssueReferenceEpsilons(t *testing.T) {
	// TF-Privacy / dp_accounting: orders 0.001·i for i in 1000..99999; we
	// start at 1.001 because order 1 is outside the accountant's domain.
	var dense []float64
	for i := 1001; i < 100000; i++ {
		dense = append(dense, 0.001*float64(i))
	}
	for _, tc := range []struct {
		name      string
		events    []dp.Event
		delta     float64
		orders    []float64
		conv      dp.Conversion
		want      string
		wantOrder float64 // 0: not checked
	}{
		// tensorflow/privacy compute_dp_sgd_privacy_test.py Test0 (n=60000,
		// batch 150, z 1.3, 15 epochs); orders of compute_dp_sgd_privacy_lib.py.
		{"tf-privacy/mnist/improved", []dp.Event{{SamplingRate: 150.0 / 60000, NoiseMultiplier: 1.3, Steps: 6000}}, 1e-5, dp.TFPrivacyOrders(), dp.ConversionImproved, "0.7242234026109595", 19},
		{"tf-privacy/mnist/classic", []dp.Event{{SamplingRate: 150.0 / 60000, NoiseMultiplier: 1.3, Steps: 6000}}, 1e-5, dp.TFPrivacyOrders(), dp.ConversionClassic, "0.941870567", 19},
		{"orders-2-5-10-20-100", []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.0, Steps: 300}}, 1e-5, []float64{2, 5, 10, 20, 100}, dp.ConversionImproved, "2.39", 5},
		// opacus/accountants/analysis/rdp.py module docstring.
		{"opacus/two-events", []dp.Event{{SamplingRate: 1e-5, NoiseMultiplier: 1.0, Steps: 10}, {SamplingRate: 1e-4, NoiseMultiplier: 3.0, Steps: 4}}, 1e-5, rangeOrders(2, 32), dp.ConversionImproved, "0.336", 23},
		// tf-privacy rdp_accountant_test.py / dp_accounting
		// rdp_privacy_accountant_test.py: z chosen for exactly (1, 1e-6)-DP;
		// they assert 7 decimal places.
		{"gaussian/q=1", []dp.Event{{SamplingRate: 1, NoiseMultiplier: 4.530877117, Steps: 1}}, 1e-6, dense, dp.ConversionImproved, "1.0000000", 0},
	} {
		for _, series := range []dp.Series{dp.SeriesBound, dp.SeriesSigned} {
			t.Run(tc.name+"/"+series.String(), func(t *testing.T) {
				eps, order, err := dp.Epsilon(tc.events, tc.delta, dp.Options{Orders: tc.orders, Series: series, Conversion: tc.conv})
				if err != nil {
					t.Fatal(err)
				}
				checkClose(t, "epsilon", eps, tc.want)
				if tc.wantOrder != 0 && order != tc.wantOrder {
					t.Errorf("order = %v, want %v", order, tc.wantOrder)
				}
			})
		}
	}
}

// TestIssueReferenceRDP reproduces dp_accounting's
// test_compute_rdp_poisson_sampled_gaussian (bound series) and the signed
// values of the issue (TF-Privacy / Opacus series).
func TestIssueReferenceRDP(t *testing.T) {
	orders := []float64{1.5, 2.5, 5, 50, 100}
	ev := dp.Event{SamplingRate: 0.01, NoiseMultiplier: 2.5, Steps: 50}
	for _, tc := range []struct {
		series dp.Series
		want   []string
	}{
		{dp.SeriesBound, []string{"6.70579741e-4", "1.08548710e-3", "2.18075656e-3", "2.38460375e-2", "167.416308"}},
		{dp.SeriesSigned, []string{"6.5e-4", "1.085e-3", "2.18075e-3", "2.3846e-2", "167.416307"}},
	} {
		t.Run(tc.series.String(), func(t *testing.T) {
			got, err := dp.RDP(ev, orders, tc.series)
			if err != nil {
				t.Fatal(err)
			}
			for i := range orders {
				checkClose(t, "rdp@"+strconv.FormatFloat(orders[i], 'g', -1, 64), got[i], tc.want[i])
			}
		})
	}
}

// TestPublishedEpsilons checks further published values of the reference
// libraries' test suites.
func TestPublishedEpsilons(t *testing.T) {
	for _, tc := range []struct {
		name      string
		events    []dp.Event
		delta     float64
		opts      dp.Options
		want      string
		wantOrder float64
	}{
		// tensorflow/privacy tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py, Test1:
		// n=100000, batch 100, z 1.0, 30 epochs -> 30000 steps.
		{"tf-privacy/Test1", []dp.Event{{SamplingRate: 0.001, NoiseMultiplier: 1.0, Steps: 30000}}, 1e-7, dp.Options{Orders: dp.TFPrivacyOrders()}, "1.4154988495444845", 13},
		// Same file, Test2: n=1e8, batch 1024, z 0.1, 10 epochs -> ceil(976562.5) steps.
		{"tf-privacy/Test2", []dp.Event{{SamplingRate: 1024.0 / 1e8, NoiseMultiplier: 0.1, Steps: 976563}}, 1e-7, dp.Options{Orders: dp.TFPrivacyOrders()}, "5907982.31138195", 1.25},
		{"tf-privacy/Test2/signed", []dp.Event{{SamplingRate: 1024.0 / 1e8, NoiseMultiplier: 0.1, Steps: 976563}}, 1e-7, dp.Options{Orders: dp.TFPrivacyOrders(), Series: dp.SeriesSigned}, "5907982.31138195", 1.25},
		// pytorch/opacus opacus/tests/accountants_test.py test_rdp_accountant:
		// z 1.5, q 0.04, int(90/0.04) = 2250 steps, DEFAULT_ALPHAS, 7 places.
		{"opacus/test_rdp_accountant", []dp.Event{{SamplingRate: 0.04, NoiseMultiplier: 1.5, Steps: 2250}}, 1e-5, dp.Options{Orders: dp.OpacusOrders(), Series: dp.SeriesSigned}, "7.32911117143", 3.9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps, order, err := dp.Epsilon(tc.events, tc.delta, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			checkClose(t, "epsilon", eps, tc.want)
			if order != tc.wantOrder {
				t.Errorf("order = %v, want %v", order, tc.wantOrder)
			}
		})
	}
}

// TestPublishedRDP checks RDP values of tensorflow/privacy
// rdp_accountant_test.py.
func TestPublishedRDP(t *testing.T) {
	// test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) = 0.07737 (5 places).
	got, err := dp.RDP(dp.Event{SamplingRate: 0.1, NoiseMultiplier: 2, Steps: 10}, []float64{5}, dp.SeriesSigned)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "rdp", got[0], "0.07737")

	// test_compute_rdp_sequence (signed series), rtol 1e-4.
	want := []float64{6.5007e-04, 1.0854e-03, 2.1808e-03, 2.3846e-02, 1.6742e+02}
	got, err = dp.RDP(dp.Event{SamplingRate: 0.01, NoiseMultiplier: 2.5, Steps: 50}, []float64{1.5, 2.5, 5, 50, 100}, dp.SeriesSigned)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-4*math.Abs(want[i]) {
			t.Errorf("rdp[%d] = %.6g, want %.5g (rtol 1e-4)", i, got[i], want[i])
		}
	}
}

// TestPublishedConversion checks dp_accounting's
// test_compute_epsilon_delta_pure_dp: constant RDP 1.1 at orders 2..32 and
// delta 1e-5 give epsilon 1.32783806176 at order 32.
func TestPublishedConversion(t *testing.T) {
	orders := rangeOrders(2, 32)
	rdp := make([]float64, len(orders))
	for i := range rdp {
		rdp[i] = 1.1
	}
	eps, order, err := dp.EpsilonFromRDP(orders, rdp, 1e-5, dp.ConversionImproved)
	if err != nil {
		t.Fatal(err)
	}
	checkClose(t, "epsilon", eps, "1.32783806176")
	if order != 32 {
		t.Errorf("order = %v, want 32", order)
	}
}

// TestLogAAgainstNumericalIntegration compares log(A_α) with a
// multi-precision numerical integral, following test_compute_log_a_equals_mp
// of dp_accounting and TF-Privacy (same parameters, same tolerances: TF-Privacy
// checks its signed series with rtol 1e-4; dp_accounting checks its bound
// series with rtol 1e-4 plus atol 1e-8, since the bound overshoots tiny
// log A values such as 6.4e-9 by a relative 4e-4). The
// integrals were computed here with mpmath 1.3.0 (quad, maxdegree 8, 50
// digits) of N(0,σ²)(z)·((1-q) + q·exp((2z-1)/(2σ²)))^α over the real line.
func TestLogAAgainstNumericalIntegration(t *testing.T) {
	for _, tc := range []struct{ q, sigma, alpha, logA float64 }{
		{1e-7, 0.1, 1.01, 4.0034123225263985058e-8},
		{1e-6, 0.1, 256, 3260234.5099259758956},
		{1e-5, 0.1, 256.1, 3263356.2822869578621},
		{1e-6, 1, 27, 8.7695113048484978803e-10},
		{1e-4, 1, 1.5, 6.4426869538366497255e-9},
		{1e-3, 1, 2, 1.7182803522145153698e-6},
		{0.01, 10, 20, 0.00019129699912842962637},
		{0.1, 100, 20.5, 0.0001999181845806829614},
		{0.99, 0.1, 256, 3263768.7077428362534},
		{0.999, 100, 256.1, 3.2601080379731126889},
	} {
		for _, series := range []dp.Series{dp.SeriesBound, dp.SeriesSigned} {
			r, err := dp.RDP(dp.Event{SamplingRate: tc.q, NoiseMultiplier: tc.sigma, Steps: 1}, []float64{tc.alpha}, series)
			if err != nil {
				t.Fatal(err)
			}
			got := r[0] * (tc.alpha - 1)
			atol := 0.0
			if series == dp.SeriesBound {
				atol = 1e-8
			}
			if math.Abs(got-tc.logA) > atol+1e-4*math.Abs(tc.logA) {
				t.Errorf("q=%g σ=%g α=%g %v: log A = %.10g, integral %.10g", tc.q, tc.sigma, tc.alpha, series, got, tc.logA)
			}
		}
	}
}
