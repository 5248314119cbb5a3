package dp_test

import (
	"bufio"
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rows = append(rows, strings.Split(line, ","))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRDPCrossImplementation compares RDP with testdata/rdp_reference.csv:
// 1,020 (q, z, order, series) points from the Python reference algorithms,
// including orders that must be excluded (+Inf) because the series does not
// converge.
func TestRDPCrossImplementation(t *testing.T) {
	rows := readCSV(t, "testdata/rdp_reference.csv")
	if len(rows) < 900 {
		t.Fatalf("only %d rows", len(rows))
	}
	worst := 0.0
	for _, r := range rows {
		q, z, a := atof(t, r[0]), atof(t, r[1]), atof(t, r[2])
		series, err := dp.ParseSeries(r[3])
		if err != nil {
			t.Fatal(err)
		}
		want := atof(t, r[4])
		got, err := dp.RDP(dp.Event{SamplingRate: q, NoiseMultiplier: z, Steps: 1}, []float64{a}, series)
		if err != nil {
			t.Fatal(err)
		}
		if math.IsInf(want, 1) || math.IsInf(got[0], 1) {
			if got[0] != want {
				t.Errorf("q=%g z=%g α=%g %s: got %g, want %g", q, z, a, r[3], got[0], want)
			}
			continue
		}
		// Relative 1e-8, plus an absolute 1e-14: for tiny q the one-step
		// RDP is ~1e-13 and both implementations carry rounding noise of
		// ~1e-16 in log(A) (Go uses log1p(-q) where Opacus uses log(1-q)).
		diff := math.Abs(got[0] - want)
		rel := diff / math.Abs(want)
		if diff > 1e-14 {
			worst = math.Max(worst, rel)
		}
		if diff > 1e-8*math.Abs(want)+1e-14 {
			t.Errorf("q=%g z=%g α=%g %s: got %.15g, want %.15g (rel %.2g)", q, z, a, r[3], got[0], want, rel)
		}
	}
	t.Logf("%d points, worst relative difference (where above 1e-14 absolute) %.2g", len(rows), worst)
}

// TestEpsilonCrossImplementation compares Epsilon with
// testdata/epsilon_reference.csv across order lists, series, conversions,
// deltas and composed events.
func TestEpsilonCrossImplementation(t *testing.T) {
	rows := readCSV(t, "testdata/epsilon_reference.csv")
	worst := 0.0
	for _, r := range rows {
		orders, err := dp.NamedOrders(r[0])
		if err != nil {
			t.Fatal(err)
		}
		series, _ := dp.ParseSeries(r[1])
		conv, _ := dp.ParseConversion(r[2])
		delta := atof(t, r[3])
		var events []dp.Event
		for _, e := range strings.Split(r[4], ";") {
			p := strings.Split(e, ":")
			steps, _ := strconv.Atoi(p[2])
			events = append(events, dp.Event{SamplingRate: atof(t, p[0]), NoiseMultiplier: atof(t, p[1]), Steps: steps})
		}
		want, wantOrder := atof(t, r[5]), atof(t, r[6])
		eps, order, err := dp.Epsilon(events, delta, dp.Options{Orders: orders, Series: series, Conversion: conv})
		if err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		rel := math.Abs(eps-want) / want
		worst = math.Max(worst, rel)
		if rel > 1e-8 || order != wantOrder {
			t.Errorf("%v: got %.15g at order %v", r, eps, order)
		}
	}
	t.Logf("%d cases, worst relative difference %.2g", len(rows), worst)
}

// TestBoundSeriesIsConservative: summing absolute values can only give a
// larger RDP than the signed series.
func TestBoundSeriesIsConservative(t *testing.T) {
	orders := dp.DefaultOrders()
	for _, ev := range []dp.Event{{SamplingRate: 0.04, NoiseMultiplier: 1.5, Steps: 2250}, {SamplingRate: 0.01, NoiseMultiplier: 0.8, Steps: 100}, {SamplingRate: 0.3, NoiseMultiplier: 3, Steps: 10}, {SamplingRate: 1e-5, NoiseMultiplier: 1, Steps: 1}} {
		b, err := dp.RDP(ev, orders, dp.SeriesBound)
		if err != nil {
			t.Fatal(err)
		}
		s, err := dp.RDP(ev, orders, dp.SeriesSigned)
		if err != nil {
			t.Fatal(err)
		}
		for i := range orders {
			// Below 1e-14 both are rounding noise (see TestRDPCrossImplementation).
			if b[i] < s[i]*(1-1e-9)-1e-14 {
				t.Errorf("%v at order %v: bound %g < signed %g", ev, orders[i], b[i], s[i])
			}
		}
	}
}

// TestCompositionAdds: composing events adds RDP, so composing (q, z, T1)
// and (q, z, T2) equals one event of T1+T2 steps.
func TestCompositionAdds(t *testing.T) {
	a, _, err := dp.Epsilon([]dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 300}, {SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 200}}, 1e-6, dp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := dp.Epsilon([]dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 500}}, 1e-6, dp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(a-b) > 1e-12*b {
		t.Errorf("composed %v != single %v", a, b)
	}
}

// TestEpsilonMonotone: more noise, fewer steps, a lower rate or a larger
// delta never increase epsilon.
func TestEpsilonMonotone(t *testing.T) {
	eps := func(ev dp.Event, delta float64) float64 {
		e, _, err := dp.Epsilon([]dp.Event{ev}, delta, dp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	prev := math.Inf(1)
	for z := 0.5; z < 5; z *= 1.1 {
		e := eps(dp.Event{SamplingRate: 0.01, NoiseMultiplier: z, Steps: 1000}, 1e-6)
		if e > prev {
			t.Errorf("z=%v: epsilon %v rose from %v", z, e, prev)
		}
		prev = e
	}
	if eps(dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 10}, 1e-6) > eps(dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 11}, 1e-6) {
		t.Error("epsilon fell with more steps")
	}
	if eps(dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 10}, 1e-6) > eps(dp.Event{SamplingRate: 0.02, NoiseMultiplier: 1, Steps: 10}, 1e-6) {
		t.Error("epsilon fell with a higher rate")
	}
	if eps(dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 10}, 1e-3) > eps(dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 10}, 1e-6) {
		t.Error("epsilon rose with a larger delta")
	}
}

// TestConversions checks the two conversions at hand-computed points.
func TestConversions(t *testing.T) {
	orders := []float64{2, 10}
	rdp := []float64{0.5, 2}
	// Classic: min(0.5 + ln(1e5)/1, 2 + ln(1e5)/9).
	eps, order, err := dp.EpsilonFromRDP(orders, rdp, 1e-5, dp.ConversionClassic)
	if err != nil {
		t.Fatal(err)
	}
	want := 2 + math.Log(1e5)/9
	if math.Abs(eps-want) > 1e-14 || order != 10 {
		t.Errorf("classic = %v at %v, want %v at 10", eps, order, want)
	}
	// Improved: r + log(1-1/a) - log(delta·a)/(a-1).
	eps, _, err = dp.EpsilonFromRDP(orders, rdp, 1e-5, dp.ConversionImproved)
	if err != nil {
		t.Fatal(err)
	}
	want = math.Min(0.5+math.Log(0.5)-math.Log(2e-5), 2+math.Log(0.9)-math.Log(1e-4)/9)
	if math.Abs(eps-want) > 1e-14 {
		t.Errorf("improved = %v, want %v", eps, want)
	}
	// KL bound: a tiny RDP gives epsilon 0 under the improved conversion.
	eps, _, err = dp.EpsilonFromRDP([]float64{2}, []float64{1e-12}, 1e-5, dp.ConversionImproved)
	if err != nil || eps != 0 {
		t.Errorf("KL case: eps %v err %v, want 0", eps, err)
	}
}

// TestNoFiniteEpsilon: when every order fails, the answer is an error, not
// a silent +Inf.
func TestNoFiniteEpsilon(t *testing.T) {
	_, _, err := dp.EpsilonFromRDP([]float64{2, 3}, []float64{math.Inf(1), math.Inf(1)}, 1e-5, dp.ConversionImproved)
	if !errors.Is(err, dp.ErrNoFiniteEpsilon) {
		t.Errorf("err = %v, want ErrNoFiniteEpsilon", err)
	}
	// Order 1.005 is too close to 1 for the improved conversion.
	_, _, err = dp.EpsilonFromRDP([]float64{1.005}, []float64{3}, 1e-5, dp.ConversionImproved)
	if !errors.Is(err, dp.ErrNoFiniteEpsilon) {
		t.Errorf("err = %v, want ErrNoFiniteEpsilon", err)
	}
}

// TestOrderLists pins the standard order lists.
func TestOrderLists(t *testing.T) {
	for _, tc := range []struct {
		name        string
		n           int
		first, last float64
	}{
		{"default", 156, 1.1, 1024},
		{"tf-privacy", 72, 1.25, 512},
		{"opacus", 151, 1.1, 63},
	} {
		o, err := dp.NamedOrders(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if len(o) != tc.n || o[0] != tc.first || o[len(o)-1] != tc.last {
			t.Errorf("%s: %d orders %v..%v, want %d orders %v..%v", tc.name, len(o), o[0], o[len(o)-1], tc.n, tc.first, tc.last)
		}
	}
	// 1 + 10/10.0 must be exactly the integer order 2.
	if o := dp.DefaultOrders(); o[9] != 2 {
		t.Errorf("DefaultOrders()[9] = %v, want 2", o[9])
	}
}
