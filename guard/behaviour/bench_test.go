package behaviour_test

import (
	"testing"

	"github.com/vigilauth/vigil/guard/behaviour"
)

// BenchmarkScoreKeystrokes measures one window of 50 keystrokes through the scorer, as the
// guard calls it: timing extraction, the model's score (profile against the population,
// normalisation, autoencoder, isolation forest, calibration), the explanation, and keeping the
// window for feedback. Synthetic typing; guard's BenchmarkScoreWindow runs real typing.
func BenchmarkScoreKeystrokes(b *testing.B) {
	m, owner := enrolled(b, 1)
	sc, err := behaviour.NewScorer(m)
	if err != nil {
		b.Fatal(err)
	}
	windows := windowsOf(guardEvents("s", owner.Type(2000), t0))
	for _, w := range windows {
		sc.ScoreKeystrokes(w)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := sc.ScoreKeystrokes(windows[i%len(windows)]); err != nil {
			b.Fatal(err)
		}
	}
}
