package aggregation

import (
	"errors"
	"math"
	"testing"
)

func TestSumRejectsWithoutDisturbing(t *testing.T) {
	s := NewSum(3)
	if err := s.Add([]float64{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]float64{{1, 2}, {1, 2, 3, 4}, {1, math.NaN(), 3}, {math.Inf(-1), 0, 0}} {
		if err := s.Add(bad); !errors.Is(err, ErrBadUpdate) {
			t.Errorf("Add(%v) = %v, want ErrBadUpdate", bad, err)
		}
	}
	if err := s.Add([]float64{1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	got := s.Values()
	if s.Count() != 2 || got[0] != 2 || got[1] != 3 || got[2] != 4 {
		t.Fatalf("sum %v count %d after rejected updates, want [2 3 4] and 2", got, s.Count())
	}
}

func TestFedAvgStep(t *testing.T) {
	sum := NewSum(2)
	sum.Add([]float64{1, -2})
	sum.Add([]float64{3, 2})
	avg, err := Average(sum.Values(), float64(sum.Count()))
	if err != nil {
		t.Fatal(err)
	}
	next, err := FedAvg{}.Step([]float64{10, 10}, avg)
	if err != nil {
		t.Fatal(err)
	}
	if next[0] != 12 || next[1] != 10 {
		t.Fatalf("next = %v, want [12 10]", next)
	}
	if _, err := Average([]float64{1}, 0); err == nil {
		t.Error("zero denominator accepted")
	}
	if _, err := (FedAvg{LearningRate: -1}).Step([]float64{1}, []float64{1}); err == nil {
		t.Error("negative learning rate accepted")
	}
}

func TestQuorumDecide(t *testing.T) {
	q := Quorum{Min: 3, Target: 5}
	for _, tc := range []struct {
		got, selected int
		deadline      bool
		want          Outcome
	}{
		{0, 10, false, Wait},
		{4, 10, false, Wait},
		{5, 10, false, Close},
		{4, 4, false, Close},
		{2, 2, false, Wait}, // everyone answered, but too few to release
		{2, 2, true, Fail},
		{3, 10, true, Close},
		{2, 10, true, Fail},
	} {
		if got := q.Decide(tc.got, tc.selected, tc.deadline); got != tc.want {
			t.Errorf("Decide(%d of %d, deadline %v) = %v, want %v", tc.got, tc.selected, tc.deadline, got, tc.want)
		}
	}
	if (Quorum{Min: 0}).Validate() == nil || (Quorum{Min: 3, Target: 2}).Validate() == nil {
		t.Error("bad quorum accepted")
	}
}
