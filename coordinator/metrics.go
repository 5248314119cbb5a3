package coordinator

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	rounds            *prometheus.CounterVec
	updates           *prometheus.CounterVec
	roundDuration     prometheus.Histogram
	participants      prometheus.Gauge
	enrolled          prometheus.Gauge
	removed           prometheus.Counter
	globalVersion     prometheus.Gauge
	epsilon           prometheus.Gauge
	epsilonRemaining  prometheus.Gauge
	paused            prometheus.Gauge
	preflightFailures prometheus.Counter
	trusteeUp         *prometheus.GaugeVec
	trusteeLatency    *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		rounds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_rounds_total", Help: "Federated rounds by result (completed or failed).",
		}, []string{"result"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_updates_total", Help: "Device updates by result (accepted: in the round's sum; rejected; unconfirmed: in the sum but its durability not confirmed to the device; stored: acknowledged into the coordinator tier by this leader, accepted once it follows it into the sum; lost: stored but refused by the sum) and reason.",
		}, []string{"result", "reason"}),
		roundDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_round_duration_seconds", Help: "Time from the start of a round to its release.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}),
		participants: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_round_participants", Help: "Updates aggregated in the latest completed round.",
		}),
		enrolled: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_enrolled_devices", Help: "Devices in the registry: enrolled, not revoked or removed.",
		}),
		removed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_devices_removed_total", Help: "Devices taken out of the registry (revoked or removed by the operator).",
		}),
		globalVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_global_model_version", Help: "Newest global model version.",
		}),
		epsilon: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_privacy_epsilon_spent", Help: "The global model's privacy loss so far, at the budget's delta.",
		}),
		epsilonRemaining: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_privacy_epsilon_remaining", Help: "The privacy budget's epsilon not yet spent.",
		}),
		paused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_rounds_paused", Help: "1 while the operator has paused rounds.",
		}),
		preflightFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_round_preflight_failures_total", Help: "Rounds not started because the trustees could not serve them (nothing charged).",
		}),
		trusteeUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_trustee_up", Help: "1 if the trustee could serve the next round at the last check.",
		}, []string{"trustee"}),
		trusteeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_trustee_info_seconds", Help: "Latency of the trustees' Info answers in the checks before each round.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"trustee"}),
	}
	for _, c := range []prometheus.Collector{m.rounds, m.updates, m.roundDuration, m.participants, m.enrolled, m.removed,
		m.globalVersion, m.epsilon, m.epsilonRemaining, m.paused, m.preflightFailures, m.trusteeUp, m.trusteeLatency} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.updates.WithLabelValues("accepted", "")
	m.rounds.WithLabelValues("completed")
	m.rounds.WithLabelValues("failed")
	return m, nil
}
