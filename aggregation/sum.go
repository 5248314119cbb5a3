package aggregation

import (
	"errors"
	"fmt"
	"math"
)

// ErrBadUpdate reports an update that does not fit the sum; the sum is left unchanged.
var ErrBadUpdate = errors.New("aggregation: invalid update")

// Sum is a running sum of plaintext updates of one dimension.
type Sum struct {
	values []float64
	count  int
}

// NewSum returns an empty sum of dim-dimensional updates.
func NewSum(dim int) *Sum { return &Sum{values: make([]float64, dim)} }

// CheckUpdate reports whether u can be added to a sum of dimension dim: the right length and
// finite values only.
func CheckUpdate(u []float64, dim int) error {
	if len(u) != dim {
		return fmt.Errorf("%w: %d values, the model has %d parameters", ErrBadUpdate, len(u), dim)
	}
	for i, v := range u {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: value %d is %v", ErrBadUpdate, i, v)
		}
	}
	return nil
}

// Add adds u to the sum. It checks u completely before changing anything.
func (s *Sum) Add(u []float64) error {
	if err := CheckUpdate(u, len(s.values)); err != nil {
		return err
	}
	for i, v := range u {
		s.values[i] += v
	}
	s.count++
	return nil
}

// Count is the number of updates added.
func (s *Sum) Count() int { return s.count }

// Dim is the dimension of the updates.
func (s *Sum) Dim() int { return len(s.values) }

// Values returns a copy of the sum.
func (s *Sum) Values() []float64 { return append([]float64(nil), s.values...) }
