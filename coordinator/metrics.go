package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	rounds        *prometheus.CounterVec
	updates       *prometheus.CounterVec
	roundDuration prometheus.Histogram
	participants  prometheus.Gauge
	enrolled      prometheus.Gauge
	globalVersion prometheus.Gauge
	epsilon       prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_rounds_total", Help: "Federated rounds by result (completed or failed).",
		}, []string{"result"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_updates_total", Help: "Device updates by result and, for rejected ones, reason.",
		}, []string{"result", "reason"}),
		roundDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_round_duration_seconds", Help: "Time from the start of a round to its release.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
		participants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_round_participants", Help: "Updates aggregated in the latest completed round.",
		}),
		enrolled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_enrolled_devices", Help: "Devices enrolled with this coordinator.",
		}),
		globalVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_global_model_version", Help: "Newest global model version.",
		}),
		epsilon: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_privacy_epsilon_spent", Help: "The global model's privacy loss so far, at the budget's delta.",
		}),
	}
	for _, c := range []prometheus.Collector{m.rounds, m.updates, m.roundDuration, m.participants, m.enrolled, m.globalVersion, m.epsilon} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.updates.WithLabelValues("accepted", "")
	m.rounds.WithLabelValues("completed")
	m.rounds.WithLabelValues("failed")
	return m, nil
}
