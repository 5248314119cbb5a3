package dp_test

import (
	"errors"
	"math"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

func TestDeviceNoiseStd(t *testing.T) {
	for _, tc := range []struct {
		z, c       float64
		mMin, tDev int
		want       float64
	}{
		{1.2, 0.5, 16, 0, 0.15},
		{1.2, 0.5, 17, 1, 0.15},
		{1, 1, 25, 3, 1 / math.Sqrt(22)},
		{2, 1, 1, 0, 2},
	} {
		s, err := dp.DeviceNoiseStd(tc.z, tc.c, tc.mMin, tc.tDev)
		if err != nil || math.Abs(s-tc.want) > 1e-15 {
			t.Errorf("%+v: got %v %v", tc, s, err)
		}
	}
	for _, tc := range []struct {
		z, c       float64
		mMin, tDev int
	}{{0, 1, 1, 0}, {1, 0, 1, 0}, {1, 1, 0, 0}, {math.NaN(), 1, 1, 0}, {1, math.Inf(1), 1, 0}, {1, 1, 5, 5}, {1, 1, 5, -1}} {
		if _, err := dp.DeviceNoiseStd(tc.z, tc.c, tc.mMin, tc.tDev); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("%+v: err %v", tc, err)
		}
	}
}

func TestDefaultToleratedDevices(t *testing.T) {
	for m, want := range map[int]int{1: 0, 2: 1, 10: 1, 11: 2, 25: 3, 100: 10} {
		if got := dp.DefaultToleratedDevices(m); got != want {
			t.Errorf("m_min %d: t_dev %d, want %d", m, got, want)
		}
	}
}

// TestAttackColludingDevices is issue 12's attack 5: at m = m_min, k
// colluders who take their own noise out of the sum leave honest noise of
// z·C·sqrt((m_min-k)/(m_min-t_dev)). In the demo (m_min 25) five colluders
// took a calibration to m_min from z to 0.894·z, and epsilon past the
// budget. Calibrated to m_min - t_dev, t_dev colluders leave exactly z, and
// the accountant's z is what the honest devices guarantee.
func TestAttackColludingDevices(t *testing.T) {
	const z, c, mMin = 1.0, 0.5, 25
	tDev := dp.DefaultToleratedDevices(mMin)
	sigma, err := dp.DeviceNoiseStd(z, c, mMin, tDev)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k <= tDev; k++ {
		honest := math.Sqrt(float64(mMin-k)) * sigma
		if honest < z*c*(1-1e-12) {
			t.Errorf("%d colluders leave noise %v < z·C = %v", k, honest, z*c)
		}
		if g := dp.GuaranteedNoiseMultiplier(z, mMin, tDev, k); g < z*(1-1e-12) {
			t.Errorf("%d colluders: guaranteed z %v < %v", k, g, z)
		}
	}
	// Beyond t_dev the guarantee degrades, which is why t_dev is stated.
	if g := dp.GuaranteedNoiseMultiplier(z, mMin, tDev, 5); !(g < z) {
		t.Errorf("5 colluders with t_dev = %d: guaranteed z %v, want below %v", tDev, g, z)
	}
	// The old calibration (t_dev = 0) lost noise to any colluder.
	if g := dp.GuaranteedNoiseMultiplier(z, mMin, 0, 5); math.Abs(g-z*math.Sqrt(20.0/25)) > 1e-12 {
		t.Errorf("old calibration: %v", g)
	}
}

// TestPrivacyMechanismMatchesAnalysis binds the analysis to the mechanism
// (issue 12, item 6). The mechanism: every honest device adds
// DeviceNoiseStd(z, C, m_min, t_dev) of noise; a sum of at least m_min
// updates with at most t_dev colluders holds at least m_min - t_dev honest
// shares; the adversary sees who took part. The analysis: one
// KnownParticipation step with (q, z). The test computes the Rényi
// divergence of the mechanism's actual output law, (participated, Y) with Y
// the worst-case sum, by numerical integration, and requires it to equal
// the accountant's RDP. If either side changes (calibration, mechanism,
// formula), this fails.
func TestPrivacyMechanismMatchesAnalysis(t *testing.T) {
	for _, tc := range []struct {
		q, z, c    float64
		mMin, tDev int
	}{
		{0.25, 1, 0.5, 25, 3},
		{0.05, 2.5, 1, 10, 1},
		{1, 1.3, 2, 3, 1},
	} {
		sigma, err := dp.DeviceNoiseStd(tc.z, tc.c, tc.mMin, tc.tDev)
		if err != nil {
			t.Fatal(err)
		}
		// The fewest honest shares a released sum holds.
		s := math.Sqrt(float64(tc.mMin-tc.tDev)) * sigma
		ev := dp.Event{SamplingRate: tc.q, NoiseMultiplier: tc.z, Steps: 1, Mechanism: dp.KnownParticipation}
		orders := []float64{1.5, 2, 3, 8, 20}
		rdp, err := dp.RDP(ev, orders, dp.SeriesBound)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range orders {
			// E_Q[(P/Q)^a] over (b, y): 1-q where b = 0, and q·∫N(y; C, s²)^a N(y; 0, s²)^(1-a) dy.
			integral := simpson(func(y float64) float64 {
				return math.Exp(a*logNormal(y, tc.c, s) + (1-a)*logNormal(y, 0, s))
			}, -40*s-a*tc.c, 40*s+a*tc.c, 200000)
			got := math.Log(1-tc.q+tc.q*integral) / (a - 1)
			if math.Abs(got-rdp[i]) > 1e-6*math.Max(1, rdp[i]) {
				t.Errorf("%+v order %v: mechanism's Rényi divergence %v, accountant charges %v", tc, a, got, rdp[i])
			}
		}
	}
}

// TestKnownParticipationBoundsHidden: the analysis Vigil charges is never
// below the Poisson-subsampled Gaussian it replaces, and equals it at q = 1.
func TestKnownParticipationBoundsHidden(t *testing.T) {
	orders := dp.DefaultOrders()
	for _, q := range []float64{1e-4, 0.01, 0.25, 1} {
		hidden, err := dp.RDP(dp.Event{SamplingRate: q, NoiseMultiplier: 1.1, Steps: 3}, orders, dp.SeriesBound)
		if err != nil {
			t.Fatal(err)
		}
		known, err := dp.RDP(dp.Event{SamplingRate: q, NoiseMultiplier: 1.1, Steps: 3, Mechanism: dp.KnownParticipation}, orders, dp.SeriesBound)
		if err != nil {
			t.Fatal(err)
		}
		for i := range orders {
			if math.IsInf(hidden[i], 1) {
				continue
			}
			if known[i] < hidden[i]*(1-1e-9) || (q == 1 && math.Abs(known[i]-hidden[i]) > 1e-12*hidden[i]) {
				t.Fatalf("q %v order %v: known %v, hidden %v", q, orders[i], known[i], hidden[i])
			}
		}
	}
}

func logNormal(y, mu, s float64) float64 {
	d := (y - mu) / s
	return -0.5*d*d - math.Log(s*math.Sqrt(2*math.Pi))
}

// simpson integrates f over [a, b] with n (even) intervals.
func simpson(f func(float64) float64, a, b float64, n int) float64 {
	h := (b - a) / float64(n)
	sum := f(a) + f(b)
	for i := 1; i < n; i++ {
		w := 2.0
		if i%2 == 1 {
			w = 4
		}
		sum += w * f(a+float64(i)*h)
	}
	return sum * h / 3
}
