// Package metrics measures how well anomaly scores separate genuine users from impostors: ROC
// curves, the area under them, the equal error rate, and plots of both.
//
// Throughout, a score is an anomaly score: higher means more likely an impostor. A threshold t
// accepts a trial when its score is at most t.
package metrics

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// ErrNoTrials reports a curve asked for without genuine or without impostor trials.
var ErrNoTrials = errors.New("metrics: need at least one genuine and one impostor trial")

// Point is one operating point: at a threshold, the share of impostors accepted (false accept
// rate, FAR, the ROC's false positive rate read as "impostor accepted") and the share of genuine
// trials rejected (false reject rate, FRR).
type Point struct {
	Threshold float64
	FAR, FRR  float64
}

// Curve is the ROC of a set of trials: operating points from the strictest threshold (nothing
// accepted: FAR 0, FRR 1) to the most lenient (everything accepted: FAR 1, FRR 0), one per
// distinct score.
type Curve struct {
	Points            []Point
	Genuine, Impostor int
}

// ROC computes the curve of genuine and impostor scores. NaN scores are an error.
func ROC(genuine, impostor []float64) (Curve, error) {
	if len(genuine) == 0 || len(impostor) == 0 {
		return Curve{}, ErrNoTrials
	}
	type trial struct {
		score    float64
		impostor bool
	}
	ts := make([]trial, 0, len(genuine)+len(impostor))
	for _, s := range genuine {
		ts = append(ts, trial{s, false})
	}
	for _, s := range impostor {
		ts = append(ts, trial{s, true})
	}
	for _, t := range ts {
		if math.IsNaN(t.score) {
			return Curve{}, fmt.Errorf("metrics: NaN score")
		}
	}
	slices.SortFunc(ts, func(a, b trial) int {
		switch {
		case a.score < b.score:
			return -1
		case a.score > b.score:
			return 1
		}
		return 0
	})
	ng, ni := float64(len(genuine)), float64(len(impostor))
	c := Curve{Genuine: len(genuine), Impostor: len(impostor)}
	c.Points = append(c.Points, Point{Threshold: math.Inf(-1), FAR: 0, FRR: 1})
	var accG, accI int
	for i := 0; i < len(ts); {
		// Accept every trial with this score at once: tied scores cannot be told apart.
		s := ts[i].score
		for ; i < len(ts) && ts[i].score == s; i++ {
			if ts[i].impostor {
				accI++
			} else {
				accG++
			}
		}
		c.Points = append(c.Points, Point{Threshold: s, FAR: float64(accI) / ni, FRR: 1 - float64(accG)/ng})
	}
	return c, nil
}

// AUC is the area under the ROC (true accept rate against FAR): the probability that an
// impostor scores higher than a genuine user, ties counting one half.
func (c Curve) AUC() float64 {
	var a float64
	for i := 1; i < len(c.Points); i++ {
		p, q := c.Points[i-1], c.Points[i]
		a += (q.FAR - p.FAR) * ((1 - p.FRR) + (1 - q.FRR)) / 2
	}
	return a
}

// EER is the equal error rate: where the curve, joined by straight segments between operating
// points, crosses FAR = FRR.
func (c Curve) EER() float64 {
	for i := 1; i < len(c.Points); i++ {
		p, q := c.Points[i-1], c.Points[i]
		dp, dq := p.FAR-p.FRR, q.FAR-q.FRR // increasing along the curve, from -1 to 1
		if dq < 0 {
			continue
		}
		if dq == dp {
			return (q.FAR + q.FRR) / 2
		}
		t := -dp / (dq - dp)
		return p.FAR + t*(q.FAR-p.FAR)
	}
	return 0.5
}

// EERThreshold is a threshold at the equal error rate: between the scores of the two operating
// points around the crossing, interpolated as EER interpolates the rates.
func (c Curve) EERThreshold() float64 {
	for i := 1; i < len(c.Points); i++ {
		p, q := c.Points[i-1], c.Points[i]
		dp, dq := p.FAR-p.FRR, q.FAR-q.FRR
		if dq < 0 {
			continue
		}
		if i == 1 || dq == dp {
			return q.Threshold
		}
		t := -dp / (dq - dp)
		return p.Threshold + t*(q.Threshold-p.Threshold)
	}
	return c.Points[len(c.Points)-1].Threshold
}

// EER is shorthand for the equal error rate of the ROC of genuine and impostor scores.
func EER(genuine, impostor []float64) (float64, error) {
	c, err := ROC(genuine, impostor)
	if err != nil {
		return 0, err
	}
	return c.EER(), nil
}

// AUC is shorthand for the area under the ROC of genuine and impostor scores.
func AUC(genuine, impostor []float64) (float64, error) {
	c, err := ROC(genuine, impostor)
	if err != nil {
		return 0, err
	}
	return c.AUC(), nil
}
