package sim

import (
	"bytes"
	"errors"
	"testing"
)

// TestProgressLabel: a round that failed to start takes a number, so rounds may count past the
// plan; they are then named without it ("round 5/4" looked like a bug).
func TestProgressLabel(t *testing.T) {
	for _, tc := range []struct {
		round uint64
		want  string
	}{{1, "round 1/4"}, {4, "round 4/4"}, {5, "round 5"}} {
		if got := (progressBar{rounds: 4}).label(tc.round); got != tc.want {
			t.Errorf("round %d: %q, want %q", tc.round, got, tc.want)
		}
	}
	var out bytes.Buffer
	progressBar{w: &out, rounds: 4}.failed(5, errors.New("too few devices"))
	if got, want := out.String(), "round 5 failed: too few devices\n"; got != want {
		t.Errorf("failed: %q, want %q", got, want)
	}
}
