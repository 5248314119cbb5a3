package models

import (
	"math"
	"testing"
)

func TestMeanSummaries(t *testing.T) {
	w := func(dense ...float64) Window { return Window{Dense: dense} }
	tests := []struct {
		name    string
		windows []Window
		feature int
		mean    float64
		n       int
	}{
		{"no windows", nil, 0, 0, 0},
		{"the mean of the windows", []Window{w(1, 10), w(3, 20)}, 1, 15, 2},
		{"NaN and infinities left out", []Window{w(1), w(math.NaN()), w(math.Inf(1)), w(3)}, 0, 2, 2},
		{"a summary shorter than the feature is left out", []Window{w(1, 4), w(1)}, 1, 4, 1},
		{"no such feature", []Window{w(1)}, 3, 0, 0},
		{"a negative index", []Window{w(1)}, -1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &UserModel{enrolled: meanSummaries(tt.windows)}
			mean, n := m.EnrolmentSummary(tt.feature)
			if mean != tt.mean || n != tt.n {
				t.Fatalf("EnrolmentSummary(%d) = %v over %d windows, want %v over %d", tt.feature, mean, n, tt.mean, tt.n)
			}
		})
	}
}
