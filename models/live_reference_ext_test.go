package models_test

import (
	"context"
	"math"
	"testing"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// TestLiveScoresMatchReference holds the live path (UserModel.Score and Detail) to the reference
// scoring kept in live_reference_test.go, on keystroke windows of the real feature set: with and
// without a population, the user's own windows and other typists', and windows with events
// outside the layout's scored buckets. The scores must agree to 1e-12 relative and the
// explanations must name the same features in the same order.
func TestLiveScoresMatchReference(t *testing.T) {
	l := keystroke.NewLayout()
	windows := func(seed uint64, n, size int) []models.Window {
		ty := keystroke.NewTypist(seed)
		var ex keystroke.TimingExtractor
		var out []models.Window
		for len(out) < n {
			var tm keystroke.Timings
			if err := ex.Extract(&tm, ty.Type(size)); err != nil {
				t.Fatal(err)
			}
			out = append(out, models.Window{Dense: append([]float64(nil), tm.Summary...), Events: append([]models.Event(nil), tm.Events...)})
		}
		return out
	}
	sum := make([]float64, models.ContributionLen(l))
	for u := uint64(100); u < 130; u++ {
		c, err := models.Contribution(l, windows(u, 5, 50))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range c {
			sum[i] += v
		}
	}
	pop, err := models.NewPopulation(l, sum, models.PopulationConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var test []models.Window
	for who := uint64(1); who <= 6; who++ {
		test = append(test, windows(who, 6, 50)...)
	}
	test = append(test, windows(7, 3, 200)...) // longer than one chunk of candidates
	odd := windows(8, 1, 50)[0]
	odd.Events = append(odd.Events, models.Event{Bucket: -1, Value: 3}, models.Event{Bucket: 1 << 20, Value: 3})
	odd.Dense[0], odd.Dense[3] = math.NaN(), math.NaN()
	test = append(test, odd)

	for _, global := range []*models.Global{{Population: pop}, nil} {
		for seed := uint64(1); seed <= 3; seed++ {
			m, err := models.FitUserModel(context.Background(), l, global, models.Enrolment{Windows: windows(seed, 5, 50)}, models.UserModelConfig{})
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range test {
				want, wantDevs := models.ReferenceScore(m, w)
				got := m.Detail(w)
				anomaly, devs := m.Score(w)
				for _, c := range []struct {
					name      string
					got, want float64
				}{
					{"profile", got.Profile, want.Profile},
					{"autoencoder", got.Autoencoder, want.Autoencoder},
					{"forest", got.Forest, want.Forest},
					{"combined", got.Combined, want.Combined},
					{"anomaly", got.Anomaly, want.Anomaly},
					{"anomaly of Score", anomaly, want.Anomaly},
				} {
					if !agree(c.got, c.want) {
						t.Fatalf("population %v, user %d, window %d: %s %v, reference %v", global != nil, seed, i, c.name, c.got, c.want)
					}
				}
				if len(devs) != len(wantDevs) {
					t.Fatalf("population %v, user %d, window %d: %d deviations, reference %d", global != nil, seed, i, len(devs), len(wantDevs))
				}
				for j, d := range devs {
					r := wantDevs[j]
					if d.Bucket != r.Bucket || d.Feature != r.Feature || d.Unit != r.Unit ||
						!agree(d.Value, r.Value) || !agree(d.Baseline, r.Baseline) || !agree(d.Z, r.Z) || !agree(d.Share, r.Share) {
						t.Fatalf("population %v, user %d, window %d: deviation %d is %+v, reference %+v", global != nil, seed, i, j, d, r)
					}
				}
			}
		}
	}
}

// agree reports whether a and b agree to 1e-12 relative (exactly, for zero and infinities).
func agree(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-12*math.Max(math.Abs(a), math.Abs(b))
}
