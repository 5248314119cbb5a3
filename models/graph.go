package models

import (
	"fmt"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// gorgoniaConstants serialises building, differentiating and compiling graphs: Gorgonia
// memoises the hash of its package-level constant nodes (the 1 every gradient starts from) on
// first use without synchronisation, so graphs built at once in several goroutines (federated
// averaging's devices) race on them (go test -race). Building takes milliseconds of a training
// run's seconds.
var gorgoniaConstants sync.Mutex

// graph is an autoencoder as a Gorgonia expression graph over a fixed batch size.
type graph struct {
	g      *G.ExprGraph
	x      *G.Node   // input batch, shape (batch, in)
	params G.Nodes   // W_1, b_1, W_2, b_2, ... in the flat order
	out    *G.Node   // reconstruction, shape (batch, in)
	loss   *G.Node   // mean squared error over the batch
	rowErr *G.Node   // per-row mean squared error, shape (batch)
	views  []float64 // the flat parameters the param nodes are backed by
}

// newGraph builds the autoencoder for batch rows. The parameter nodes are backed by a private
// copy of params, which the Gorgonia solvers update in place.
func newGraph(spec Spec, params []float64, batch int) (*graph, error) {
	flat := append([]float64(nil), params...)
	gr := &graph{g: G.NewGraph(), views: flat}
	gr.x = G.NewMatrix(gr.g, tensor.Float64, G.WithShape(batch, spec.InputDim()), G.WithName("x"))

	h := gr.x
	ls := spec.layers(flat)
	for i, l := range ls {
		w := G.NewMatrix(gr.g, tensor.Float64, G.WithShape(l.in, l.out), G.WithName(fmt.Sprintf("W%d", i+1)),
			G.WithValue(tensor.New(tensor.WithShape(l.in, l.out), tensor.WithBacking(l.w))))
		b := G.NewVector(gr.g, tensor.Float64, G.WithShape(l.out), G.WithName(fmt.Sprintf("b%d", i+1)),
			G.WithValue(tensor.New(tensor.WithShape(l.out), tensor.WithBacking(l.b))))
		gr.params = append(gr.params, w, b)

		z, err := G.Mul(h, w)
		if err != nil {
			return nil, fmt.Errorf("models: layer %d: %w", i+1, err)
		}
		if z, err = G.BroadcastAdd(z, b, nil, []byte{0}); err != nil {
			return nil, fmt.Errorf("models: layer %d bias: %w", i+1, err)
		}
		if i < len(ls)-1 {
			switch spec.Activation {
			case Tanh:
				z, err = G.Tanh(z)
			case ReLU:
				z, err = G.Rectify(z)
			}
			if err != nil {
				return nil, fmt.Errorf("models: layer %d activation: %w", i+1, err)
			}
		}
		h = z
	}
	gr.out = h

	diff, err := G.Sub(gr.out, gr.x)
	if err != nil {
		return nil, fmt.Errorf("models: loss: %w", err)
	}
	sq, err := G.Square(diff)
	if err != nil {
		return nil, fmt.Errorf("models: loss: %w", err)
	}
	if gr.rowErr, err = G.Mean(sq, 1); err != nil {
		return nil, fmt.Errorf("models: loss: %w", err)
	}
	if gr.loss, err = G.Mean(gr.rowErr); err != nil {
		return nil, fmt.Errorf("models: loss: %w", err)
	}
	return gr, nil
}

// GraphErrors returns the per-row mean squared reconstruction error of data computed by the
// Gorgonia graph, the same maths training optimises. It is slow; Scorer is the live path and
// must agree with it.
func GraphErrors(spec Spec, params []float64, data [][]float64) ([]float64, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := spec.CheckParams(params); err != nil {
		return nil, err
	}
	if err := checkData(spec, data); err != nil {
		return nil, err
	}
	gorgoniaConstants.Lock()
	gr, err := newGraph(spec, params, len(data))
	if err != nil {
		gorgoniaConstants.Unlock()
		return nil, err
	}
	m := G.NewTapeMachine(gr.g)
	gorgoniaConstants.Unlock()
	defer m.Close()
	if err := G.Let(gr.x, batchTensor(data, spec.InputDim())); err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	if err := m.RunAll(); err != nil {
		return nil, fmt.Errorf("models: forward pass: %w", err)
	}
	out := gr.rowErr.Value().Data().([]float64)
	return append([]float64(nil), out...), nil
}

func batchTensor(rows [][]float64, dim int) *tensor.Dense {
	backing := make([]float64, 0, len(rows)*dim)
	for _, r := range rows {
		backing = append(backing, r...)
	}
	return tensor.New(tensor.WithShape(len(rows), dim), tensor.WithBacking(backing))
}
