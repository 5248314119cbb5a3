package mouse

import (
	"math"
	"sync"
)

// referencePrior is the layout's public prior of its reference centres (see
// models.Layout.ReferencePrior): per bucket, the mean of synthetic movers' values in it (and in
// the buckets it pools), rounded to 1/64 so that every platform computes the same bits, and
// with them the same encoding digest; NaN for a bucket the movers never fill. Movers describe
// nobody, and move only roughly as people do (Balabit's users' feature means are within 3 units
// of the movers': log-durations 7.4 against 6.7, log-jerks 10.9 against 13.8, the time from
// stopping to pressing 2.4 against 4.7 log-ms), which is why a reference round still learns the
// centres; but devices describe their means as deviations of a few units from this prior
// rather than as raw values of up to 11, which spends less norm and multiplies less of the
// noise on the device count into the centres.
var referencePrior = sync.OnceValue(func() []float64 {
	l := newLayout()
	n, sum := make([]float64, l.NumBuckets()), make([]float64, l.NumBuckets())
	add := func(b int, v float64) {
		for ; b >= 0; b = l.Parent[b] {
			n[b]++
			sum[b] += v
		}
	}
	for seed := uint64(1); seed <= priorMovers; seed++ {
		for _, w := range NewMover(seed).Windows(priorActions) {
			for _, e := range w.Events {
				add(e.Bucket, e.Value)
			}
			for d, v := range w.Dense {
				if !math.IsNaN(v) {
					add(l.DenseBase+d, v)
				}
			}
		}
	}
	prior := make([]float64, l.NumBuckets())
	for b := range prior {
		prior[b] = math.NaN()
		if n[b] > 0 {
			prior[b] = math.Round(64*sum[b]/n[b]) / 64
		}
	}
	return prior
})

// The prior's synthetic movers and actions per mover.
const priorMovers, priorActions = 50, 200
