package dp_test

import (
	"crypto/rand"
	"testing"

	"github.com/vigilauth/vigil/dp"
)

// BenchmarkEpsilonDefaultOrders is the target: epsilon of one event
// over dp_accounting's 156 default orders in under 1 ms.
func BenchmarkEpsilonDefaultOrders(b *testing.B) {
	events := []dp.Event{{SamplingRate: 150.0 / 60000, NoiseMultiplier: 1.3, Steps: 6000}}
	for _, bc := range []struct {
		name string
		opts dp.Options
	}{
		{"bound", dp.Options{}},
		{"signed", dp.Options{Series: dp.SeriesSigned}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := dp.Epsilon(events, 1e-5, bc.opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEpsilonFederated is one event typical of Vigil: 1000 of 100,000
// devices per round, z = 1.1, 500 rounds.
func BenchmarkEpsilonFederated(b *testing.B) {
	events := []dp.Event{{SamplingRate: 0.01, NoiseMultiplier: 1.1, Steps: 500}}
	for b.Loop() {
		if _, _, err := dp.Epsilon(events, 1e-6, dp.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPlan is the issue's `plan` target (under 1 s).
func BenchmarkPlan(b *testing.B) {
	cfg := dp.PlanConfig{Epsilon: 8, Delta: 1e-6, Population: 100000, ClientsPerRound: 1000, Rounds: 1000}
	for b.Loop() {
		if _, err := dp.Plan(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNoiser100k noises one update of 100,000 parameters, as a device
// does each round, with crypto/rand.
func BenchmarkNoiser100k(b *testing.B) {
	v := make([]float64, 100000)
	n, err := dp.NewNoiser(0.3, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(8 * len(v)))
	for b.Loop() {
		if err := n.Add(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClipL2_100k clips one update of 100,000 parameters.
func BenchmarkClipL2_100k(b *testing.B) {
	v := make([]float64, 100000)
	for i := range v {
		v[i] = float64(i%7) - 3
	}
	b.SetBytes(int64(8 * len(v)))
	for b.Loop() {
		if _, err := dp.ClipL2(v, 1); err != nil {
			b.Fatal(err)
		}
	}
}
