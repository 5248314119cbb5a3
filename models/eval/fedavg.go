package eval

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/vigilauth/vigil/models"
)

// FedConfig sets the in-process simulation of federated averaging (McMahan et al. 2017) that
// trains the global autoencoder: plaintext, without the differential-privacy noise and
// homomorphic encryption of the real rounds, which change the average only by the noise.
type FedConfig struct {
	// Rounds is the number of rounds (default 10).
	Rounds int
	// PerRound is the number of devices sampled each round (default 50, at most all).
	PerRound int
	// LocalEpochs is each device's training per round (default 5).
	LocalEpochs int
}

func (c *FedConfig) validate() error {
	if c.Rounds == 0 {
		c.Rounds = 10
	}
	if c.PerRound == 0 {
		c.PerRound = 50
	}
	if c.LocalEpochs == 0 {
		c.LocalEpochs = 5
	}
	if c.Rounds < 0 || c.PerRound < 0 || c.LocalEpochs < 0 {
		return fmt.Errorf("eval: negative federated setting %+v", *c)
	}
	return nil
}

// fedAvg trains spec from init: each round a seeded sample of devices trains from the global
// parameters on its own rows, and the global parameters move by the row-weighted average of
// the devices' deltas (server learning rate 1).
func fedAvg(ctx context.Context, spec models.Spec, init []float64, devices [][][]float64, cfg FedConfig, train models.TrainConfig, seed uint64, workers int, progress func(done, total int)) ([]float64, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	global := append([]float64(nil), init...)
	rng := rand.New(rand.NewPCG(seed, 0xfeda))
	order := make([]int, len(devices))
	for i := range order {
		order[i] = i
	}
	train.Epochs = cfg.LocalEpochs
	for r := 0; r < cfg.Rounds; r++ {
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		picked := order[:min(cfg.PerRound, len(order))]
		deltas := make([][]float64, len(picked))
		t := train
		t.Seed = seed + uint64(r)
		err := forEach(ctx, len(picked), workers, nil, func(i int) error {
			res, err := models.Train(ctx, spec, global, devices[picked[i]], t)
			if err != nil {
				return fmt.Errorf("eval: federated round %d, device %d: %w", r+1, picked[i], err)
			}
			for j := range res.Params {
				res.Params[j] -= global[j]
			}
			deltas[i] = res.Params
			return nil
		})
		if err != nil {
			return nil, err
		}
		var weight float64
		sum := make([]float64, len(global))
		for i, d := range deltas {
			w := float64(len(devices[picked[i]]))
			weight += w
			for j, v := range d {
				sum[j] += w * v
			}
		}
		for j := range global {
			global[j] += sum[j] / weight
		}
		if progress != nil {
			progress(r+1, cfg.Rounds)
		}
	}
	return global, nil
}
