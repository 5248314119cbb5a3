package models

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// Activation is the non-linearity of the hidden layers. The output layer is always linear.
type Activation string

// Supported activations.
const (
	Tanh Activation = "tanh"
	ReLU Activation = "relu"
)

// MaxLayerWidth and MaxParams bound a Spec, so that a hostile or corrupt spec cannot make a device
// allocate without limit.
const (
	MaxLayerWidth = 4096
	MaxParams     = 1 << 22
)

// ErrBadSpec reports an autoencoder architecture that cannot be built.
var ErrBadSpec = errors.New("models: invalid model spec")

// Spec describes a dense autoencoder: Layers lists the widths from input to output (the output
// width equals the input width), and hidden layers use Activation.
//
// The flat parameter vector holds, for each layer l = 1..len(Layers)-1 in order, the weight
// matrix W_l of shape (Layers[l-1], Layers[l]) in row-major order, then the bias b_l of length
// Layers[l]. A layer maps a row vector x to x·W_l + b_l.
type Spec struct {
	Layers     []int
	Activation Activation
}

// Validate reports whether s describes a buildable autoencoder.
func (s Spec) Validate() error {
	if len(s.Layers) < 3 {
		return fmt.Errorf("%w: need at least input, one hidden and output layer, got %d layers", ErrBadSpec, len(s.Layers))
	}
	if s.Layers[0] != s.Layers[len(s.Layers)-1] {
		return fmt.Errorf("%w: output width %d differs from input width %d", ErrBadSpec, s.Layers[len(s.Layers)-1], s.Layers[0])
	}
	for i, w := range s.Layers {
		if w < 1 || w > MaxLayerWidth {
			return fmt.Errorf("%w: layer %d has width %d, want 1..%d", ErrBadSpec, i, w, MaxLayerWidth)
		}
	}
	if s.Activation != Tanh && s.Activation != ReLU {
		return fmt.Errorf("%w: activation %q, want %q or %q", ErrBadSpec, s.Activation, Tanh, ReLU)
	}
	if n := s.numParams(); n > MaxParams {
		return fmt.Errorf("%w: %d parameters exceed the limit of %d", ErrBadSpec, n, MaxParams)
	}
	return nil
}

// InputDim is the width of the feature vectors the model reconstructs.
func (s Spec) InputDim() int { return s.Layers[0] }

// NumParams is the length of the flat parameter vector.
func (s Spec) NumParams() int { return s.numParams() }

func (s Spec) numParams() int {
	n := 0
	for l := 1; l < len(s.Layers); l++ {
		n += s.Layers[l-1]*s.Layers[l] + s.Layers[l]
	}
	return n
}

// layer is a view of one layer's weights and bias inside a flat parameter vector.
type layer struct {
	in, out int
	w, b    []float64
}

// layers slices params into per-layer views without copying.
func (s Spec) layers(params []float64) []layer {
	ls := make([]layer, 0, len(s.Layers)-1)
	off := 0
	for l := 1; l < len(s.Layers); l++ {
		in, out := s.Layers[l-1], s.Layers[l]
		ls = append(ls, layer{
			in: in, out: out,
			w: params[off : off+in*out],
			b: params[off+in*out : off+in*out+out],
		})
		off += in*out + out
	}
	return ls
}

// InitParams returns freshly initialised parameters: Glorot-uniform weights and zero biases,
// deterministic given seed.
func (s Spec) InitParams(seed uint64) ([]float64, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	params := make([]float64, s.NumParams())
	for _, l := range s.layers(params) {
		limit := math.Sqrt(6 / float64(l.in+l.out))
		for i := range l.w {
			l.w[i] = (2*rng.Float64() - 1) * limit
		}
	}
	return params, nil
}

// CheckParams reports whether params fits s and holds only finite numbers.
func (s Spec) CheckParams(params []float64) error {
	if len(params) != s.NumParams() {
		return fmt.Errorf("%w: %d parameters, spec needs %d", ErrBadSpec, len(params), s.NumParams())
	}
	for i, v := range params {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: parameter %d is %v", ErrBadSpec, i, v)
		}
	}
	return nil
}
