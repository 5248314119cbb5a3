package aggregation

import "testing"

func FuzzUnmarshalPlainAccumulator(f *testing.F) {
	a := NewPlainAccumulator(2)
	a.Sum.Add([]float64{1, 2})
	b, _ := a.MarshalBinary()
	f.Add(b, 2)
	f.Add([]byte{1, 2, 3}, 1)
	f.Fuzz(func(t *testing.T, b []byte, dim int) {
		if dim < 0 || dim > 1<<16 {
			return
		}
		a, err := UnmarshalPlainAccumulator(dim, b)
		if err != nil {
			return
		}
		again, _ := a.MarshalBinary()
		if string(again) != string(b) {
			t.Fatal("saved sum does not round-trip")
		}
	})
}
