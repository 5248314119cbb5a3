package models

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// testLayout is a small feature set: two event buckets pooled by a root with an offset group,
// a bucket pooled by a pooling-only bucket, and two dense entries.
//
//	0 root (kind 0, offset group 0)  <- 1, 2 (kind 0)
//	3 pooling only (kind -1)         <- 4 (kind 1)
//	5, 6 dense (kind 2)
func testLayout() *Layout {
	th := ThresholdConfig{Offset: 0.5, Slope: 0.5, Typical: 0, Temperature: 0.5, Set: true}
	return &Layout{
		Name:       "test-v1",
		Kinds:      []Kind{{"a", 1}, {"b", 1}, {"dense", 1}},
		BucketKind: []int{0, 0, 0, -1, 1, 2, 2},
		Parent:     []int{-1, 0, 0, -1, 3, -1, -1},
		Offset:     []int{0, -1, -1, -1, -1, -1, -1},
		Names:      []string{"root", "one", "two", "pool", "four", "dense zero", "dense one"},
		DenseBase:  5, NumDense: 2,
		Weights:   Weights{Profile: 1, Autoencoder: 0.3, Forest: 0.3},
		Threshold: th, ThresholdAlone: th,
	}
}

// testUser draws windows of a synthetic user whose buckets 1, 2 and 4 and dense entries centre
// on mean + offset.
func testWindows(rng *rand.Rand, n int, offset float64) []Window {
	ws := make([]Window, n)
	for i := range ws {
		w := Window{Dense: []float64{offset + 0.3*rng.NormFloat64(), 2*offset + 0.3*rng.NormFloat64()}}
		for j := 0; j < 6; j++ {
			w.Events = append(w.Events,
				Event{Bucket: 1, Value: 1 + offset + 0.5*rng.NormFloat64()},
				Event{Bucket: 2, Value: 3 - offset + 0.5*rng.NormFloat64()},
				Event{Bucket: 4, Value: 2 + 2*offset + 0.5*rng.NormFloat64()})
		}
		ws[i] = w
	}
	return ws
}

func testPopulation(t testing.TB, l *Layout, users int, seed uint64) *Population {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	sum := make([]float64, ContributionLen(l))
	for u := 0; u < users; u++ {
		c, err := Contribution(l, testWindows(rng, 5, rng.NormFloat64()))
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range c {
			sum[i] += v
		}
	}
	pop, err := NewPopulation(l, sum, PopulationConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return pop
}

func TestLayoutValidate(t *testing.T) {
	if err := testLayout().Validate(); err != nil {
		t.Fatalf("test layout: %v", err)
	}
	for name, spoil := range map[string]func(l *Layout){
		"cycle":               func(l *Layout) { l.Parent[0] = 1 },
		"parent out of range": func(l *Layout) { l.Parent[1] = 99 },
		"kind out of range":   func(l *Layout) { l.BucketKind[1] = 5 },
		"missing names":       func(l *Layout) { l.Names = l.Names[:3] },
		"dense outside":       func(l *Layout) { l.NumDense = 5 },
		"dense pooling":       func(l *Layout) { l.DenseBase = 3 },
		"negative weight":     func(l *Layout) { l.Kinds[0].Weight = -1 },
		"no thresholds":       func(l *Layout) { l.Threshold = ThresholdConfig{} },
		"no weights":          func(l *Layout) { l.Weights = Weights{} },
		"offset group":        func(l *Layout) { l.Offset[0] = maxOffsets },
		"short prior":         func(l *Layout) { l.ReferencePrior = make([]float64, 3) },
		"infinite prior":      func(l *Layout) { l.ReferencePrior = []float64{0, 0, 0, math.Inf(1), 0, 0, 0} },
		"prior out of bounds": func(l *Layout) { l.ReferencePrior = []float64{0, 0, 0, 0, 0, 0, 2 * refMaxCentre} },
	} {
		l := testLayout()
		spoil(l)
		if err := l.Validate(); !errors.Is(err, ErrBadLayout) {
			t.Errorf("%s: Validate = %v, want ErrBadLayout", name, err)
		}
	}
}

// TestPopulationByHand checks the population statistics against values worked out by hand.
func TestPopulationByHand(t *testing.T) {
	l := testLayout()
	a := []Window{{Dense: []float64{math.NaN(), math.NaN()}, Events: []Event{{1, 1}, {1, 3}}}}
	b := []Window{{Dense: []float64{math.NaN(), math.NaN()}, Events: []Event{{1, 5}, {1, 5}, {1, 5}}}}
	sum := make([]float64, ContributionLen(l))
	for _, ws := range [][]Window{a, b} {
		c, err := Contribution(l, ws)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range c {
			sum[i] += v
		}
	}
	pop, err := NewPopulation(l, sum, PopulationConfig{MinUsers: 2, MinDof: 1})
	if err != nil {
		t.Fatal(err)
	}
	// User means 2 and 5; within: (2 + 0) / (1 + 2); 2.5 events per user; between: mean of
	// squared means minus squared mean, minus within / events per user.
	within := 2.0 / 3
	between := (4.0+25)/2 - 3.5*3.5 - within/2.5
	for _, b := range []int{0, 1} { // bucket 1 and its parent see the same events
		if math.Abs(pop.Mean[b]-3.5) > 1e-12 || math.Abs(pop.Within[b]-within) > 1e-12 || math.Abs(pop.Between[b]-between) > 1e-12 {
			t.Errorf("bucket %d: mean %v within %v between %v, want 3.5 %v %v", b, pop.Mean[b], pop.Within[b], pop.Between[b], within, between)
		}
		if pop.Freq[b] != 5 {
			t.Errorf("bucket %d: %v events, want 5", b, pop.Freq[b])
		}
	}
	if pop.usable(2) || pop.usable(4) {
		t.Error("buckets nobody saw are modelled")
	}
	if pop.Users != 2 {
		t.Errorf("users %v, want 2", pop.Users)
	}
	if _, err := NewPopulation(l, sum[:3], PopulationConfig{}); !errors.Is(err, ErrBadData) {
		t.Errorf("short statistics: %v", err)
	}
	sum[0] = math.Inf(1)
	if _, err := NewPopulation(l, sum, PopulationConfig{}); !errors.Is(err, ErrBadData) {
		t.Errorf("infinite statistic: %v", err)
	}
}

func TestProfileBacksOffAndSeparates(t *testing.T) {
	l := testLayout()
	pop := testPopulation(t, l, 40, 1)
	rng := rand.New(rand.NewPCG(2, 2))
	for _, mode := range []struct {
		name string
		pop  *Population
	}{{"federated", pop}, {"alone", nil}} {
		t.Run(mode.name, func(t *testing.T) {
			enrol := testWindows(rng, 5, 1.5)
			// The user never showed bucket 2: the profile must back off to the root.
			for i := range enrol {
				kept := enrol[i].Events[:0]
				for _, e := range enrol[i].Events {
					if e.Bucket != 2 {
						kept = append(kept, e)
					}
				}
				enrol[i].Events = kept
			}
			p, err := FitProfile(l, mode.pop, enrol, ProfileConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(p.mean[2]) {
				t.Fatal("no expectation for an unseen bucket with a seen parent")
			}
			if mode.pop != nil {
				if want := p.mean[0] + pop.Mean[2] - pop.Mean[0]; math.Abs(p.mean[2]-want) > 1e-12 {
					t.Errorf("unseen bucket expects %v, want parent's %v shifted by the population's difference", p.mean[2], want)
				}
			}
			var genuine, impostor float64
			for _, w := range testWindows(rng, 20, 1.5) {
				genuine += p.Score(w) / 20
			}
			for _, w := range testWindows(rng, 20, -1) {
				impostor += p.Score(w) / 20
			}
			if !(impostor > genuine+1) {
				t.Fatalf("impostor windows score %v, genuine %v: not separated", impostor, genuine)
			}
			// Feeding back windows of a drifted user moves the baseline towards them.
			drifted := testWindows(rng, 30, 0.5)
			before := p.Score(drifted[0])
			for _, w := range drifted[1:] {
				if err := p.Observe(w, 0.95); err != nil {
					t.Fatal(err)
				}
			}
			if after := p.Score(drifted[0]); !(after < before) {
				t.Errorf("after feedback the drifted window scores %v, before %v", after, before)
			}
		})
	}
}

func TestProfileRejectsBadInput(t *testing.T) {
	l := testLayout()
	good := testWindows(rand.New(rand.NewPCG(1, 1)), 2, 0)
	for name, ws := range map[string][]Window{
		"no windows":      nil,
		"pooling bucket":  {{Dense: []float64{0, 0}, Events: []Event{{3, 1}}}},
		"bucket too big":  {{Dense: []float64{0, 0}, Events: []Event{{70, 1}}}},
		"NaN event":       {{Dense: []float64{0, 0}, Events: []Event{{1, math.NaN()}}}},
		"short dense":     {{Dense: []float64{0}}},
		"good then wrong": append(good, Window{Dense: []float64{0, 0}, Events: []Event{{-1, 0}}}),
	} {
		if _, err := FitProfile(l, nil, ws, ProfileConfig{}); !errors.Is(err, ErrBadData) {
			t.Errorf("%s: FitProfile = %v, want ErrBadData", name, err)
		}
	}
	other := testLayout()
	other.Name = "other-v1"
	pop := testPopulation(t, other, 5, 1)
	if _, err := FitProfile(l, pop, good, ProfileConfig{}); !errors.Is(err, ErrBadLayout) {
		t.Errorf("population of another layout: %v", err)
	}
	if _, err := FitUserModel(context.Background(), l, nil, Enrolment{}, UserModelConfig{}); !errors.Is(err, ErrBadData) {
		t.Errorf("empty enrolment: %v", err)
	}
}
