package models

import (
	"fmt"
	"math"
	"slices"
)

// Scaling chooses how a user's features are normalised before the autoencoder and the isolation
// forest see them.
type Scaling string

// Supported scalings.
const (
	// ZScore centres on the mean and divides by the standard deviation.
	ZScore Scaling = "zscore"
	// Robust centres on the median and divides by the interquartile range (scaled by 1.349 to
	// match the standard deviation of a normal distribution), so a few wild windows in the
	// enrolment data do not stretch the scale.
	Robust Scaling = "robust"
)

// minScale keeps a constant feature from dividing by zero.
const minScale = 1e-6

// Normaliser maps a feature vector to standard units: (x - Center) / Scale per entry, with NaN
// (missing) entries mapped to 0, the centre.
type Normaliser struct {
	Center, Scale []float64
}

// FitNormaliser learns a Normaliser from rows, ignoring NaN entries. When prior is not nil it
// holds a typical scale per entry (from the population), and each entry's scale is pulled
// towards it as if priorWeight rows had shown it: few enrolment rows cannot estimate a spread
// well alone.
func FitNormaliser(s Scaling, rows [][]float64, prior []float64, priorWeight float64) (Normaliser, error) {
	if len(rows) == 0 {
		return Normaliser{}, fmt.Errorf("%w: no rows to normalise", ErrBadData)
	}
	dim := len(rows[0])
	if prior != nil && len(prior) != dim {
		return Normaliser{}, fmt.Errorf("%w: prior scale has %d entries, rows have %d", ErrBadData, len(prior), dim)
	}
	if s != ZScore && s != Robust {
		return Normaliser{}, fmt.Errorf("models: unknown scaling %q, want %q or %q", s, ZScore, Robust)
	}
	n := Normaliser{Center: make([]float64, dim), Scale: make([]float64, dim)}
	col := make([]float64, 0, len(rows))
	for j := 0; j < dim; j++ {
		col = col[:0]
		for i, r := range rows {
			if len(r) != dim {
				return Normaliser{}, fmt.Errorf("%w: row %d has %d entries, want %d", ErrBadData, i, len(r), dim)
			}
			if v := r[j]; !math.IsNaN(v) {
				if math.IsInf(v, 0) {
					return Normaliser{}, fmt.Errorf("%w: row %d entry %d is %v", ErrBadData, i, j, v)
				}
				col = append(col, v)
			}
		}
		center, scale := math.NaN(), math.NaN()
		switch {
		case len(col) == 0:
		case s == ZScore:
			center, scale = meanStd(col)
		default:
			slices.Sort(col)
			center = quantile(col, 0.5)
			scale = (quantile(col, 0.75) - quantile(col, 0.25)) / 1.349
		}
		if math.IsNaN(center) {
			center = 0
		}
		w := float64(len(col))
		switch {
		case prior != nil && prior[j] > 0 && !math.IsNaN(scale):
			scale = math.Sqrt((w*scale*scale + priorWeight*prior[j]*prior[j]) / (w + priorWeight))
		case prior != nil && prior[j] > 0:
			scale = prior[j]
		case math.IsNaN(scale) || scale < minScale:
			scale = 1 // no spread seen and none known: assume unit spread
		}
		n.Center[j], n.Scale[j] = center, max(scale, minScale)
	}
	return n, nil
}

// Apply writes the normalised x into dst, which must be as long as x.
func (n *Normaliser) Apply(dst, x []float64) {
	for j, v := range x {
		if v != v {
			dst[j] = 0
			continue
		}
		dst[j] = (v - n.Center[j]) / n.Scale[j]
	}
}

func meanStd(xs []float64) (mean, sd float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, math.NaN()
	}
	for _, x := range xs {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(xs)-1))
}

// quantile returns the p-quantile of sorted xs by linear interpolation.
func quantile(sorted []float64, p float64) float64 {
	pos := p * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[lo+1]*frac
}
