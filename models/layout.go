package models

import (
	"errors"
	"fmt"
	"math"
)

// Event is one measurement seen in a window of behaviour: which bucket it belongs to (one key's
// hold time, one digraph's latency, one feature of a mouse action) and its value on that
// bucket's scale.
type Event struct {
	Bucket int
	Value  float64
}

// Window is one window of a user's behaviour as the models see it: Dense is a fixed-length
// summary of the window (NaN marks an entry the window cannot support) and Events are the
// individual measurements, of which a window holds a varying number per bucket.
type Window struct {
	Dense  []float64
	Events []Event
}

// ErrBadLayout reports a Layout that cannot describe a feature set.
var ErrBadLayout = errors.New("models: invalid feature layout")

// MaxBuckets bounds a Layout, so that a corrupt one cannot make a device allocate without limit.
const MaxBuckets = 1 << 20

// Kind is a family of buckets that a profile scores together, e.g. "hold times". The profile's
// score is the weighted sum over kinds of the mean evidence of a window's events of that kind.
type Kind struct {
	Name   string
	Weight float64
}

// Layout describes the features of one feature set to the detectors: the buckets events fall
// into, how rare buckets back off to broader ones, and how dense summary entries appear as
// buckets. Feature packages (keystroke, mouse) build their Layout once; detectors only read it.
type Layout struct {
	// Name is the feature set, e.g. "keystroke-digraph-v2".
	Name string
	// Kinds lists the kinds of buckets.
	Kinds []Kind
	// BucketKind[b] is the kind of bucket b, or -1 for a bucket that is never seen in events and
	// only pools its children (for example "any digraph into E").
	BucketKind []int
	// Parent[b] is the broader bucket that b backs off to when the user has few events in b,
	// or -1. Parent chains must end (no cycles).
	Parent []int
	// Offset[b] is, for a bucket without parent, the group of buckets over which a user's
	// overall shift from the population is estimated (e.g. "all hold times"), or -1.
	Offset []int
	// DenseBase is the bucket of Window.Dense[0]; dense entry d is bucket DenseBase+d.
	DenseBase, NumDense int
	// Names describes every bucket in plain words ("hold time of E"), so that explanations can
	// name features without building strings on the live path.
	Names []string
	// Weights are the default weights of the detectors for this feature set.
	Weights Weights
	// Threshold and ThresholdAlone are the default threshold placements of user models with and
	// without a federation (Global), for the default UserModelConfig.
	Threshold, ThresholdAlone ThresholdConfig
	// ThresholdStats, when Set, places the thresholds of user models whose population came
	// from the deployable statistics round (Population.FromStats), which scores on another
	// level than the exact population; unset, they take Threshold.
	ThresholdStats ThresholdConfig
	// WeightsStats, when not zero, combines the detectors of user models whose population came
	// from the statistics round; zero, they take Weights. That population knows less than the
	// exact one, so the user's own autoencoder and forest earn more weight against it.
	WeightsStats Weights
	// StatsBackoff makes every PopulationStats encoding of this layout decode with Backoff,
	// whatever its configuration says: for layouts whose rare buckets are better scored as
	// their ancestors than not at all.
	StatsBackoff bool
	// StatsPoolByRoot likewise makes every PopulationStats encoding of this layout pool with
	// PoolByRoot: for layouts whose kinds mix features of different units under different
	// roots. The layout carries it so that the device, the coordinator and the evaluation
	// cannot encode it differently.
	StatsPoolByRoot bool
	// ReferencePrior, for a layout that learns its reference in a round (ReferenceStats), is
	// per bucket a public guess of the broad buckets' centres from data that describes nobody
	// (for example synthetic users'), which devices describe their means as deviations from;
	// nil, or NaN for a bucket, means 0. The closer the guess, the less norm a device spends
	// on what everybody shares and the less of the noise is multiplied into the centres.
	ReferencePrior []float64
	// Natural converts a value on bucket b's scale to the unit people read (e.g. milliseconds)
	// and names that unit; nil means values are shown as they are.
	Natural func(b int, v float64) (float64, string)
}

// NumBuckets is the number of buckets.
func (l *Layout) NumBuckets() int { return len(l.BucketKind) }

// numOffsets is one more than the largest offset group.
func (l *Layout) numOffsets() int {
	n := 0
	for _, g := range l.Offset {
		n = max(n, g+1)
	}
	return n
}

// Validate reports whether l is consistent.
func (l *Layout) Validate() error {
	nb := len(l.BucketKind)
	switch {
	case nb == 0 || nb > MaxBuckets:
		return fmt.Errorf("%w: %d buckets, want 1..%d", ErrBadLayout, nb, MaxBuckets)
	case len(l.Parent) != nb || len(l.Offset) != nb:
		return fmt.Errorf("%w: %d buckets but %d parents and %d offsets", ErrBadLayout, nb, len(l.Parent), len(l.Offset))
	case len(l.Kinds) == 0 || len(l.Kinds) > maxKinds:
		return fmt.Errorf("%w: %d kinds, want 1..%d", ErrBadLayout, len(l.Kinds), maxKinds)
	case l.NumDense < 0 || l.DenseBase < 0 || l.DenseBase+l.NumDense > nb:
		return fmt.Errorf("%w: dense entries %d..%d outside %d buckets", ErrBadLayout, l.DenseBase, l.DenseBase+l.NumDense, nb)
	case len(l.Names) != nb:
		return fmt.Errorf("%w: %d buckets but %d names", ErrBadLayout, nb, len(l.Names))
	}
	for b := 0; b < nb; b++ {
		if k := l.BucketKind[b]; k < -1 || k >= len(l.Kinds) {
			return fmt.Errorf("%w: bucket %d has kind %d", ErrBadLayout, b, k)
		}
		if g := l.Offset[b]; g < -1 || g >= maxOffsets {
			return fmt.Errorf("%w: bucket %d has offset group %d", ErrBadLayout, b, g)
		}
		// A parent chain longer than the number of buckets has a cycle.
		steps := 0
		for p := l.Parent[b]; p != -1; p = l.Parent[p] {
			if p < -1 || p >= nb || steps > nb {
				return fmt.Errorf("%w: bucket %d has a broken parent chain", ErrBadLayout, b)
			}
			steps++
		}
	}
	if l.ReferencePrior != nil && len(l.ReferencePrior) != nb {
		return fmt.Errorf("%w: %d buckets but a reference prior of %d", ErrBadLayout, nb, len(l.ReferencePrior))
	}
	for b, c := range l.ReferencePrior {
		if math.IsInf(c, 0) || math.Abs(c) > refMaxCentre {
			return fmt.Errorf("%w: bucket %d has reference prior %v, want NaN or within %d of 0", ErrBadLayout, b, c, refMaxCentre)
		}
	}
	for d := 0; d < l.NumDense; d++ {
		if l.BucketKind[l.DenseBase+d] < 0 {
			return fmt.Errorf("%w: dense entry %d maps to a pooling bucket", ErrBadLayout, d)
		}
	}
	if w := l.Weights; !(w.Profile >= 0 && w.Autoencoder >= 0 && w.Forest >= 0) || w == (Weights{}) {
		return fmt.Errorf("%w: default detector weights %+v", ErrBadLayout, w)
	}
	for _, t := range []ThresholdConfig{l.Threshold, l.ThresholdAlone} {
		if err := t.validate(); err != nil || !t.Set {
			return fmt.Errorf("%w: default thresholds missing or out of range", ErrBadLayout)
		}
	}
	if w := l.WeightsStats; !(w.Profile >= 0 && w.Autoencoder >= 0 && w.Forest >= 0) {
		return fmt.Errorf("%w: detector weights for the statistics round's population %+v", ErrBadLayout, w)
	}
	if err := l.ThresholdStats.validate(); err != nil {
		return fmt.Errorf("%w: thresholds for the statistics round's population out of range", ErrBadLayout)
	}
	for k, kind := range l.Kinds {
		if !(kind.Weight >= 0 && kind.Weight < 1e6) {
			return fmt.Errorf("%w: kind %d (%s) has weight %v", ErrBadLayout, k, kind.Name, kind.Weight)
		}
	}
	return nil
}

// Size caps of the detectors.
const (
	maxKinds   = 16
	maxOffsets = 16
)

// checkWindow reports whether w fits l: the dense part has the right length and every event
// names a bucket that events may fall into.
func (l *Layout) checkWindow(w Window) error {
	if len(w.Dense) != l.NumDense {
		return fmt.Errorf("%w: window has %d dense entries, layout %s has %d", ErrBadData, len(w.Dense), l.Name, l.NumDense)
	}
	for i, e := range w.Events {
		if e.Bucket < 0 || e.Bucket >= len(l.BucketKind) || l.BucketKind[e.Bucket] < 0 {
			return fmt.Errorf("%w: event %d has bucket %d", ErrBadData, i, e.Bucket)
		}
		if e.Value != e.Value || e.Value > 1e300 || e.Value < -1e300 {
			return fmt.Errorf("%w: event %d has value %v", ErrBadData, i, e.Value)
		}
	}
	return nil
}
