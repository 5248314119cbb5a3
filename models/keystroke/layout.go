package keystroke

import (
	"fmt"
	"math"

	"github.com/vigilauth/vigil/models"
)

// Buckets of TimingFeatureSet beyond the events: pooling buckets that back rare digraphs off to
// "any digraph into this key", then the window summary.
const (
	ddIntoBase       = NumBuckets
	udIntoBase       = ddIntoBase + NumKeyClasses
	summaryBase      = udIntoBase + NumKeyClasses
	numLayoutBuckets = summaryBase + NumSummaryFeatures
)

// Kinds of TimingFeatureSet, in Layout order.
const (
	KindHold = iota
	KindPressPress
	KindReleasePress
	KindHoldAfter
	KindHoldBefore
	KindSummary
)

// NewLayout describes TimingFeatureSet to the models package. Holds are scored in context (the
// hold of a key after and before each other key), with the plain per-key hold as the bucket they
// back off to; digraph latencies back off to all digraphs into the same key, and those to the
// user's overall speed.
func NewLayout() *models.Layout {
	l := &models.Layout{
		Name: TimingFeatureSet,
		Kinds: []models.Kind{
			KindHold:         {Name: "hold times", Weight: 0},
			KindPressPress:   {Name: "press-to-press intervals", Weight: 1},
			KindReleasePress: {Name: "release-to-press gaps", Weight: 1},
			KindHoldAfter:    {Name: "hold times after each key", Weight: 1},
			KindHoldBefore:   {Name: "hold times before each key", Weight: 1},
			KindSummary:      {Name: "window summary", Weight: 0.8},
		},
		BucketKind: make([]int, numLayoutBuckets),
		Parent:     make([]int, numLayoutBuckets),
		Offset:     make([]int, numLayoutBuckets),
		Names:      make([]string, numLayoutBuckets),
		DenseBase:  summaryBase,
		NumDense:   NumSummaryFeatures,
		Natural:    natural,
		Weights:    models.Weights{Profile: 1, Autoencoder: 0.3, Forest: 0.3},
		// Fitted by models/eval on the first 100 participants of the Aalto data (L=50, G=5).
		Threshold:      models.ThresholdConfig{Offset: 1.096, Slope: 0.25, Typical: -1.610, Temperature: 0.413, Set: true},
		ThresholdAlone: models.ThresholdConfig{Offset: 0.222, Slope: 0.5, Typical: -1.896, Temperature: 0.438, Set: true},
		// Against the population of the deployable round (epsilon 8, all 500 devices'
		// enrolments), chosen on the first 100 participants only. Rare digraphs take their
		// ancestors' model rather than going unscored (StatsBackoff); the user's own
		// autoencoder weighs more against this population than against the exact one
		// (detector weights by equal error rate: mean 4.54% and pooled 5.25% before, 4.34% and
		// 5.15% with both changes); the threshold placement was fitted by the equal-error rule
		// (offset 1.07, temperature 0.39), then its offset and temperature set where takeover
		// replays of the same participants (20 takeovers each) are challenged as fast with
		// fewer false challenges: median 42 keystrokes, 1.6% missed, 0.35 false challenges per
		// 1,000 genuine keystrokes, against 42, 1.6% and 0.48 before (models/eval
		// TestExploreFusion, guard/takeover TestExploreDevelopment). The temperature was then
		// widened from 0.33 to 0.5, with the guard's MaxBehaviourLoss 30 -> 32 and SoftPassTrust
		// 80 -> 90, on the same participants' replays with seeds 1, 2 and 3: windows somewhat
		// short of the user's threshold earn less trust (or cost a little), and one far past it
		// (an owner's odd stretch, or the first of a takeover) costs a little less. Median 42.7
		// -> 42.3 keystrokes, missed 1.73% -> 1.63%, false challenges 0.395 -> 0.319 per 1,000
		// (mean of the three seeds). The temperature moves no equal error rate and no decision
		// at the threshold (anomaly 0.5).
		StatsBackoff:   true,
		WeightsStats:   models.Weights{Profile: 1, Autoencoder: 0.5, Forest: 0.15},
		ThresholdStats: models.ThresholdConfig{Offset: 1.17, Slope: 0.5, Typical: -1.70, Temperature: 0.5, Set: true},
	}
	for b := range l.BucketKind {
		l.Parent[b], l.Offset[b] = -1, -1
	}
	for c := 0; c < NumKeyClasses; c++ {
		l.BucketKind[c], l.Offset[c] = KindHold, 0
		l.Names[c] = BucketName(c)
		l.BucketKind[ddIntoBase+c], l.Offset[ddIntoBase+c] = -1, 1
		l.Names[ddIntoBase+c] = "press-to-press time into " + KeyClassName(c)
		l.BucketKind[udIntoBase+c], l.Offset[udIntoBase+c] = -1, 2
		l.Names[udIntoBase+c] = "release-to-press gap into " + KeyClassName(c)
		for p := 0; p < NumKeyClasses; p++ {
			pair := p*NumKeyClasses + c
			for _, s := range []struct{ base, kind, parent int }{
				{ddBase, KindPressPress, ddIntoBase + c},
				{udBase, KindReleasePress, udIntoBase + c},
				{hpBase, KindHoldAfter, c},
				{hnBase, KindHoldBefore, p},
			} {
				l.BucketKind[s.base+pair], l.Parent[s.base+pair] = s.kind, s.parent
				l.Names[s.base+pair] = BucketName(s.base + pair)
			}
		}
	}
	for d, name := range summaryNames {
		l.BucketKind[summaryBase+d] = KindSummary
		l.Names[summaryBase+d] = name
	}
	return l
}

// Window converts Timings to the models' view of a window. The result shares t's buffers.
func (t *Timings) Window() models.Window {
	return models.Window{Dense: t.Summary, Events: t.Events}
}

// natural converts a bucket value to milliseconds where it is a time.
func natural(b int, v float64) (float64, string) {
	switch {
	case b < udBase || b >= hpBase && b < NumBuckets:
		return math.Exp(v), "ms"
	case b < NumBuckets:
		return 20 * math.Sinh(v), "ms"
	case b >= summaryBase:
		d := b - summaryBase
		switch {
		case d < sumUD && d%7 != 1:
			return math.Exp(v), "ms"
		case d >= sumUD && d < sumUD+7 && d%7 != 1:
			return 20 * math.Sinh(v), "ms"
		case d >= sumOverlap && d <= sumCapsLock:
			return 100 * v, "%"
		}
	}
	return v, ""
}

// BucketName describes bucket b of TimingFeatureSet's events in plain words, e.g. "hold time of
// E after T" or "press-to-press time from T to H".
func BucketName(b int) string {
	if b < 0 || b >= NumBuckets {
		return "unknown timing"
	}
	if b < ddBase {
		return "hold time of " + KeyClassName(b)
	}
	pair := (b - ddBase) % numDigraphBuckets
	p, c := KeyClassName(pair/NumKeyClasses), KeyClassName(pair%NumKeyClasses)
	switch (b - ddBase) / numDigraphBuckets {
	case 0:
		return fmt.Sprintf("press-to-press time from %s to %s", p, c)
	case 1:
		return fmt.Sprintf("release-to-press gap from %s to %s", p, c)
	case 2:
		return fmt.Sprintf("hold time of %s after %s", c, p)
	default:
		return fmt.Sprintf("hold time of %s before %s", p, c)
	}
}

// Summaries returns the summaries of the usable windows of window keystrokes that start every
// stride keystrokes of ks: the rows an autoencoder over TimingFeatureSet learns from.
func Summaries(ks []Keystroke, window, stride int) [][]float64 {
	var ex TimingExtractor
	var t Timings
	var rows [][]float64
	for start := 0; start+window <= len(ks); start += max(1, stride) {
		if ex.Extract(&t, ks[start:start+window]) == nil {
			rows = append(rows, append([]float64(nil), t.Summary...))
		}
	}
	return rows
}
