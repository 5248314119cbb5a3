package dp_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/vigilauth/vigil/dp"
)

// Epsilon of DP-SGD on MNIST as in TF-Privacy's tutorial: batches of 150
// out of 60,000 examples, noise multiplier 1.3, 15 epochs (6000 steps).
func ExampleEpsilon() {
	events := []dp.Event{{SamplingRate: 150.0 / 60000, NoiseMultiplier: 1.3, Steps: 6000}}
	eps, order, err := dp.Epsilon(events, 1e-5, dp.Options{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("epsilon %.4f at order %v\n", eps, order)
	// Output: epsilon 0.7242 at order 19
}

// The smallest noise multiplier for epsilon 8 at delta 1e-6 when 1000 of
// 100,000 devices take part in each of 1000 rounds.
func ExamplePlan() {
	res, err := dp.Plan(dp.PlanConfig{Epsilon: 8, Delta: 1e-6, Population: 100000, ClientsPerRound: 1000, Rounds: 1000})
	if err != nil {
		panic(err)
	}
	fmt.Printf("z = %.4f gives epsilon %.4f\n", res.NoiseMultiplier, res.Epsilon)
	// Output: z = 0.6451 gives epsilon 8.0000
}

// A coordinator's ledger: charge rounds until the budget refuses one.
func ExampleLedger() {
	dir, err := os.MkdirTemp("", "ledger")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	l, err := dp.OpenLedger(filepath.Join(dir, "authnet.ledger"), "model/authnet", dp.Budget{Epsilon: 1, Delta: 1e-5})
	if err != nil {
		panic(err)
	}
	round := dp.Event{SamplingRate: 0.1, NoiseMultiplier: 2, Steps: 1}
	for r := uint64(1); ; r++ {
		if _, err := l.Charge(r, round); errors.Is(err, dp.ErrBudgetExhausted) {
			fmt.Println(err)
			break
		} else if err != nil {
			panic(err)
		}
	}
	eps, _ := l.Spent()
	fmt.Printf("spent %.4f in %d rounds\n", eps, len(l.Entries()))
	// Output:
	// dp: model/authnet round 12 refused: epsilon would reach 1.00091, over the budget of 1 at delta 1e-05 (already spent 0.968206)
	// spent 0.9682 in 11 rounds
}

// A device clips its update to norm C and adds its share of the noise.
func ExampleNoiser() {
	update := []float64{3, 4}                // a model delta of norm 5
	const c, z, mMin, tDev = 1.0, 1.1, 10, 1 // noise for 9 honest devices of 10
	if _, err := dp.ClipL2(update, c); err != nil {
		panic(err)
	}
	sigma, err := dp.DeviceNoiseStd(z, c, mMin, tDev)
	if err != nil {
		panic(err)
	}
	n, err := dp.NewNoiser(sigma, nil) // nil: crypto/rand
	if err != nil {
		panic(err)
	}
	if err := n.Add(update); err != nil {
		panic(err)
	}
	fmt.Printf("sigma %.4f, grid 2^%v\n", n.Sigma(), math.Log2(n.Grid()))
	// Output: sigma 0.3667, grid 2^-16
}
