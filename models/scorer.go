package models

import (
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// Scorer computes reconstruction errors on the live path: the same maths as the Gorgonia graph,
// over plain slices with buffers allocated once, so scoring a window allocates nothing.
// A Scorer is not safe for concurrent use; give each goroutine its own (see Clone).
type Scorer struct {
	spec   Spec
	params []float64
	layers []layer
	acts   [][]float64 // acts[l] is the output of layer l
	sqErr  []float64   // per-feature squared error of the last Score
}

// NewScorer returns a Scorer over a private copy of params.
func NewScorer(spec Spec, params []float64) (*Scorer, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if err := spec.CheckParams(params); err != nil {
		return nil, err
	}
	s := &Scorer{spec: spec, params: append([]float64(nil), params...)}
	s.layers = spec.layers(s.params)
	for _, l := range s.layers {
		s.acts = append(s.acts, make([]float64, l.out))
	}
	s.sqErr = make([]float64, spec.InputDim())
	return s, nil
}

// Clone returns an independent Scorer with the same parameters.
func (s *Scorer) Clone() *Scorer {
	c, _ := NewScorer(s.spec, s.params)
	return c
}

// Spec returns the architecture the Scorer evaluates.
func (s *Scorer) Spec() Spec { return s.spec }

// Score returns the mean squared reconstruction error of x, which must have Spec().InputDim()
// finite entries.
func (s *Scorer) Score(x []float64) float64 {
	in := x
	last := len(s.layers) - 1
	for i, l := range s.layers {
		y := s.acts[i]
		copy(y, l.b)
		blas64.Gemv(blas.Trans, 1,
			blas64.General{Rows: l.in, Cols: l.out, Stride: l.out, Data: l.w},
			blas64.Vector{N: l.in, Inc: 1, Data: in}, 1,
			blas64.Vector{N: l.out, Inc: 1, Data: y})
		if i < last {
			activate(s.spec.Activation, y)
		}
		in = y
	}
	var sum float64
	for j, v := range in {
		d := v - x[j]
		s.sqErr[j] = d * d
		sum += d * d
	}
	return sum / float64(len(x))
}

// SquaredErrors returns the per-feature squared errors of the last Score. The slice is reused
// by the next call.
func (s *Scorer) SquaredErrors() []float64 { return s.sqErr }

func activate(a Activation, v []float64) {
	switch a {
	case Tanh:
		for i, x := range v {
			v[i] = math.Tanh(x)
		}
	case ReLU:
		for i, x := range v {
			if x < 0 {
				v[i] = 0
			}
		}
	}
}
