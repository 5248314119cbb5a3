package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
)

// frontendMetrics are an aggregation frontend's counters, named as the leader's (metrics.go) so
// that one dashboard reads both: a frontend's vigil_updates_total counts what it stored in the
// tier and what it refused, by the reason devices are told.
type frontendMetrics struct {
	updates *prometheus.CounterVec
	store   *prometheus.HistogramVec
}

func newFrontendMetrics(reg prometheus.Registerer) (*frontendMetrics, error) {
	m := &frontendMetrics{
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_updates_total", Help: "Device updates taken by this aggregation frontend, by result (stored: acknowledged, the coordinator tier holds it inside the round; rejected) and reason (DUPLICATE_UPDATE: the tier already held the device's update for the round, mostly a device sending again after an answer it did not hear).",
		}, []string{"result", "reason"}),
		store: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_frontend_store_seconds", Help: "Time from a checked update to the coordinator tier's answer (its check against the round's partial sum and the tier's compare-and-set store), by result (stored, or the reason of the refusal).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}, []string{"result"}),
	}
	for _, c := range []prometheus.Collector{m.updates, m.store} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.updates.WithLabelValues("stored", "")
	m.updates.WithLabelValues("rejected", ReasonDuplicate)
	m.store.WithLabelValues("stored")
	return m, nil
}
