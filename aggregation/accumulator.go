package aggregation

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// Accumulator is a round's running sum of device updates as they arrive on the wire. Add checks
// an update completely before changing the sum, so a rejected update leaves it as it was; an
// update that does not fit the sum is an error wrapping ErrBadUpdate. MarshalBinary encodes the
// sum for the coordinator's durable state; each implementation comes with a function that
// decodes it again. Implementations are not safe for concurrent use.
type Accumulator interface {
	Add(from Origin, u *vigilv1.Update) error
	Count() int
	MarshalBinary() ([]byte, error)
}

// Origin is where an update comes from: the task it answers. Encrypted updates are bound to
// it, so an update cannot be moved to another round or device.
type Origin struct {
	Round  uint64
	Device string
	Nonce  []byte
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

// Add implements Accumulator. Plaintext updates carry no binding, so from is not used.
func (a *PlainAccumulator) Add(_ Origin, u *vigilv1.Update) error {
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

// MarshalBinary encodes the count and the sum: a little-endian uint64, then one little-endian
// float64 per parameter.
func (a *PlainAccumulator) MarshalBinary() ([]byte, error) {
	b := make([]byte, 8+8*a.Sum.Dim())
	binary.LittleEndian.PutUint64(b, uint64(a.Sum.count))
	for i, v := range a.Sum.values {
		binary.LittleEndian.PutUint64(b[8+8*i:], math.Float64bits(v))
	}
	return b, nil
}

// UnmarshalPlainAccumulator decodes what PlainAccumulator.MarshalBinary encoded for a sum of
// dim-parameter updates.
func UnmarshalPlainAccumulator(dim int, b []byte) (*PlainAccumulator, error) {
	if len(b) != 8+8*dim {
		return nil, fmt.Errorf("aggregation: saved sum has %d bytes, %d parameters need %d", len(b), dim, 8+8*dim)
	}
	a := NewPlainAccumulator(dim)
	a.Sum.count = int(binary.LittleEndian.Uint64(b))
	if a.Sum.count < 0 {
		return nil, errors.New("aggregation: saved sum has a negative count")
	}
	for i := range a.Sum.values {
		a.Sum.values[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8+8*i:]))
		if math.IsNaN(a.Sum.values[i]) || math.IsInf(a.Sum.values[i], 0) {
			return nil, fmt.Errorf("aggregation: saved sum has %v at %d", a.Sum.values[i], i)
		}
	}
	return a, nil
}
