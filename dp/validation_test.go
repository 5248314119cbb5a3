package dp_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

// TestBadInput: every value outside its domain is a *ParamError that names
// the parameter, never a silent epsilon of 0 or +Inf.
func TestBadInput(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	ok := dp.Event{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 10}
	for _, tc := range []struct {
		name   string
		events []dp.Event
		delta  float64
		orders []float64
		param  string
	}{
		{"q=0", []dp.Event{{SamplingRate: 0, NoiseMultiplier: 1, Steps: 10}}, 1e-5, nil, "sampling rate q"},
		{"q<0", []dp.Event{{SamplingRate: -0.1, NoiseMultiplier: 1, Steps: 10}}, 1e-5, nil, "sampling rate q"},
		{"q>1", []dp.Event{{SamplingRate: 1.5, NoiseMultiplier: 1, Steps: 10}}, 1e-5, nil, "sampling rate q"},
		{"q=NaN", []dp.Event{{SamplingRate: nan, NoiseMultiplier: 1, Steps: 10}}, 1e-5, nil, "sampling rate q"},
		{"z=0", []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 0, Steps: 10}}, 1e-5, nil, "noise multiplier z"},
		{"z<0", []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: -1, Steps: 10}}, 1e-5, nil, "noise multiplier z"},
		{"z=NaN", []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: nan, Steps: 10}}, 1e-5, nil, "noise multiplier z"},
		{"z=Inf", []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: inf, Steps: 10}}, 1e-5, nil, "noise multiplier z"},
		{"steps<0", []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: -1}}, 1e-5, nil, "steps T"},
		{"second event bad", []dp.Event{ok, {SamplingRate: 0.01, NoiseMultiplier: 1, Steps: -3}}, 1e-5, nil, "steps T"},
		{"delta=0", []dp.Event{ok}, 0, nil, "delta"},
		{"delta=1", []dp.Event{ok}, 1, nil, "delta"},
		{"delta<0", []dp.Event{ok}, -1e-5, nil, "delta"},
		{"delta=NaN", []dp.Event{ok}, nan, nil, "delta"},
		{"delta subnormal, where math.Log is wrong", []dp.Event{ok}, 1e-320, nil, "delta"},
		{"order=1", []dp.Event{ok}, 1e-5, []float64{1, 2}, "RDP order"},
		{"order<1", []dp.Event{ok}, 1e-5, []float64{0.5}, "RDP order"},
		{"order=NaN", []dp.Event{ok}, 1e-5, []float64{2, nan}, "RDP order"},
		{"order=Inf", []dp.Event{ok}, 1e-5, []float64{inf}, "RDP order"},
		{"order too large", []dp.Event{ok}, 1e-5, []float64{dp.MaxOrder + 1}, "RDP order"},
		{"no orders", []dp.Event{ok}, 1e-5, []float64{}, "number of RDP orders"},
		{"no events", nil, 1e-5, nil, "number of events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eps, _, err := dp.Epsilon(tc.events, tc.delta, dp.Options{Orders: tc.orders})
			var pe *dp.ParamError
			if !errors.As(err, &pe) || !errors.Is(err, dp.ErrInvalidParameter) {
				t.Fatalf("eps %v, err %v: want a *ParamError", eps, err)
			}
			if pe.Param != tc.param || !strings.Contains(err.Error(), tc.param) {
				t.Errorf("error %q names %q, want %q", err, pe.Param, tc.param)
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	ev := []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1, Steps: 1}}
	for _, opts := range []dp.Options{{Series: 7}, {Conversion: -1}} {
		if _, _, err := dp.Epsilon(ev, 1e-5, opts); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("%+v: err = %v", opts, err)
		}
	}
	for _, s := range []string{"Bound", "x"} {
		if _, err := dp.ParseSeries(s); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("ParseSeries(%q) = %v", s, err)
		}
		if _, err := dp.ParseConversion(s); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("ParseConversion(%q) = %v", s, err)
		}
		if _, err := dp.NamedOrders(s); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("NamedOrders(%q) = %v", s, err)
		}
	}
	if _, _, err := dp.EpsilonFromRDP([]float64{2, 3}, []float64{1}, 1e-5, dp.ConversionImproved); !errors.Is(err, dp.ErrInvalidParameter) {
		t.Errorf("length mismatch: %v", err)
	}
}

// TestZeroSteps: an event of zero steps spends nothing, and that zero is
// the true answer (not a failure in disguise).
func TestZeroSteps(t *testing.T) {
	eps, _, err := dp.Epsilon([]dp.Event{{SamplingRate: 0.5, NoiseMultiplier: 0.5, Steps: 0}}, 1e-5, dp.Options{})
	if err != nil || eps != 0 {
		t.Errorf("eps %v err %v, want 0", eps, err)
	}
}

func TestUserLevelSamplingRate(t *testing.T) {
	q, err := dp.UserLevelSamplingRate(1000, 100000)
	if err != nil || q != 0.01 {
		t.Errorf("q = %v, %v", q, err)
	}
	for _, tc := range [][2]int{{0, 10}, {11, 10}, {1, 0}, {-1, 10}} {
		if _, err := dp.UserLevelSamplingRate(tc[0], tc[1]); !errors.Is(err, dp.ErrInvalidParameter) {
			t.Errorf("%v: err = %v", tc, err)
		}
	}
}

// TestExtremeParameters: values at the edge of float64 give a clear answer
// quickly (an error when nothing finite remains), never NaN.
func TestExtremeParameters(t *testing.T) {
	for _, ev := range []dp.Event{
		{SamplingRate: 0.5, NoiseMultiplier: 1e-300, Steps: 1},
		{SamplingRate: 1e-300, NoiseMultiplier: 1e-3, Steps: 1},
		{SamplingRate: 0.5, NoiseMultiplier: 1e300, Steps: 1},
		{SamplingRate: 1 - 1e-16, NoiseMultiplier: 1, Steps: math.MaxInt32},
	} {
		for _, series := range []dp.Series{dp.SeriesBound, dp.SeriesSigned} {
			eps, _, err := dp.Epsilon([]dp.Event{ev}, 1e-5, dp.Options{Series: series})
			if math.IsNaN(eps) || math.IsInf(eps, 0) || (err != nil && !errors.Is(err, dp.ErrNoFiniteEpsilon)) {
				t.Errorf("%v %v: eps %v err %v", ev, series, eps, err)
			}
		}
	}
}
