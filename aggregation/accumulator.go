package aggregation

import (
	"fmt"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Accumulator is a round's running sum of device updates as they arrive on the wire. Add checks
// an update completely before changing the sum, so a rejected update leaves it as it was.
// Implementations are not safe for concurrent use.
type Accumulator interface {
	Add(u *vigilv1.Update) error
	Count() int
}

// PlainAccumulator sums updates sent in the clear. It exists for debugging and tests: with it
// the coordinator sees every device's update.
type PlainAccumulator struct {
	Sum *Sum
}

var _ Accumulator = (*PlainAccumulator)(nil)

// NewPlainAccumulator returns an empty PlainAccumulator for dim-parameter updates.
func NewPlainAccumulator(dim int) *PlainAccumulator {
	return &PlainAccumulator{Sum: NewSum(dim)}
}

// Add implements Accumulator.
func (a *PlainAccumulator) Add(u *vigilv1.Update) error {
	if u.GetEncoding() != vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT {
		return fmt.Errorf("%w: encoding %v, this round takes plaintext updates", ErrBadUpdate, u.GetEncoding())
	}
	if u.GetDimension() != uint64(a.Sum.Dim()) {
		return fmt.Errorf("%w: dimension %d, the model has %d parameters", ErrBadUpdate, u.GetDimension(), a.Sum.Dim())
	}
	return a.Sum.Add(u.GetValues())
}

// Count implements Accumulator.
func (a *PlainAccumulator) Count() int { return a.Sum.Count() }
