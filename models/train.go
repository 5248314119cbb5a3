package models

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ErrBadData reports training or scoring data that does not fit the model.
var ErrBadData = errors.New("models: invalid data")

// TrainConfig sets how an autoencoder is trained: Adam on the mean squared reconstruction error,
// mini-batches drawn by a seeded shuffle.
type TrainConfig struct {
	// Epochs is the number of passes over the data (default 20).
	Epochs int
	// BatchSize is the number of rows per step (default 32; at most the number of rows).
	BatchSize int
	// LearningRate is Adam's step size (default 1e-3).
	LearningRate float64
	// Seed fixes the shuffling, so that training is reproducible.
	Seed uint64
}

func (c *TrainConfig) validate() error {
	if c.Epochs == 0 {
		c.Epochs = 20
	}
	if c.BatchSize == 0 {
		c.BatchSize = 32
	}
	if c.LearningRate == 0 {
		c.LearningRate = 1e-3
	}
	switch {
	case c.Epochs < 0 || c.Epochs > 100000:
		return fmt.Errorf("models: epochs %d out of range 1..100000", c.Epochs)
	case c.BatchSize < 0:
		return fmt.Errorf("models: batch size %d is negative", c.BatchSize)
	case !(c.LearningRate > 0 && c.LearningRate < 10):
		return fmt.Errorf("models: learning rate %v out of range (0, 10)", c.LearningRate)
	}
	return nil
}

// TrainResult is what training produced.
type TrainResult struct {
	Params []float64
	// EpochLoss is the mean training loss of each epoch's steps.
	EpochLoss []float64
}

// Train fits the autoencoder spec, starting from init, to reconstruct the rows of data. It checks
// ctx between epochs.
func Train(ctx context.Context, spec Spec, init []float64, data [][]float64, cfg TrainConfig) (TrainResult, error) {
	if err := spec.Validate(); err != nil {
		return TrainResult{}, err
	}
	if err := spec.CheckParams(init); err != nil {
		return TrainResult{}, err
	}
	if err := cfg.validate(); err != nil {
		return TrainResult{}, err
	}
	if err := checkData(spec, data); err != nil {
		return TrainResult{}, err
	}
	batch := min(cfg.BatchSize, len(data))
	gorgoniaConstants.Lock()
	gr, err := newGraph(spec, init, batch)
	if err == nil {
		if _, err = G.Grad(gr.loss, gr.params...); err != nil {
			err = fmt.Errorf("models: gradient: %w", err)
		}
	}
	if err != nil {
		gorgoniaConstants.Unlock()
		return TrainResult{}, err
	}
	m := G.NewTapeMachine(gr.g, G.BindDualValues(gr.params...))
	gorgoniaConstants.Unlock()
	defer m.Close()
	solver := G.NewAdamSolver(G.WithLearnRate(cfg.LearningRate))

	dim := spec.InputDim()
	backing := make([]float64, batch*dim)
	xs := tensor.New(tensor.WithShape(batch, dim), tensor.WithBacking(backing))
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x7a1e))
	order := make([]int, len(data))
	for i := range order {
		order[i] = i
	}
	// Every step sees a full batch: the last one of an epoch wraps around to the epoch's start,
	// because a Gorgonia graph has a fixed shape.
	steps := (len(data) + batch - 1) / batch
	res := TrainResult{EpochLoss: make([]float64, 0, cfg.Epochs)}
	for epoch := 0; epoch < cfg.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return TrainResult{}, err
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var sum float64
		for s := 0; s < steps; s++ {
			for r := 0; r < batch; r++ {
				copy(backing[r*dim:(r+1)*dim], data[order[(s*batch+r)%len(order)]])
			}
			if err := G.Let(gr.x, xs); err != nil {
				return TrainResult{}, fmt.Errorf("models: %w", err)
			}
			if err := m.RunAll(); err != nil {
				return TrainResult{}, fmt.Errorf("models: training step: %w", err)
			}
			sum += gr.loss.Value().Data().(float64)
			if err := solver.Step(G.NodesToValueGrads(gr.params)); err != nil {
				return TrainResult{}, fmt.Errorf("models: optimiser step: %w", err)
			}
			m.Reset()
			// A device agent on one core fits while it answers its local API: yielding after
			// each step lets a call through within a step instead of after the whole fit
			// (BenchmarkAuthorizeGRPCProcessStreamRefitting, one core: p99 17 ms, 210 ms before).
			runtime.Gosched()
		}
		loss := sum / float64(steps)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return TrainResult{}, fmt.Errorf("models: training diverged in epoch %d (loss %v)", epoch+1, loss)
		}
		res.EpochLoss = append(res.EpochLoss, loss)
	}
	res.Params = make([]float64, 0, spec.NumParams())
	for _, n := range gr.params {
		res.Params = append(res.Params, n.Value().Data().([]float64)...)
	}
	return res, nil
}

func checkData(spec Spec, data [][]float64) error {
	if len(data) == 0 {
		return fmt.Errorf("%w: no rows", ErrBadData)
	}
	for i, row := range data {
		if len(row) != spec.InputDim() {
			return fmt.Errorf("%w: row %d has %d features, model takes %d", ErrBadData, i, len(row), spec.InputDim())
		}
		for j, v := range row {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("%w: row %d feature %d is %v", ErrBadData, i, j, v)
			}
		}
	}
	return nil
}
