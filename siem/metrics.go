package siem

import "github.com/prometheus/client_golang/prometheus"

// Reasons an entry is dropped before it reaches the spool (vigil_siem_dropped_total{reason}).
const (
	DropQueueFull   = "queue_full"  // Enqueue found the channel full
	DropSpoolFull   = "spool_full"  // the spool held MaxSpoolBytes unacknowledged
	DropUnencodable = "unencodable" // the entry did not encode within MaxEventBytes
)

type metrics struct {
	queued      prometheus.Counter
	spooled     prometheus.Counter
	sent        *prometheus.CounterVec
	failed      *prometheus.CounterVec
	dropped     map[string]prometheus.Counter
	spoolBytes  prometheus.Gauge
	pendingByte *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, sinks []string) (*metrics, error) {
	droppedVec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_siem_dropped_total", Help: "Entries that never reached the SIEM spool, by reason; a gap finding reports each loss.",
	}, []string{"reason"})
	m := &metrics{
		queued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_siem_queued_total", Help: "Decisions and session events accepted by the SIEM exporter's queue.",
		}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_siem_spooled_total", Help: "OCSF events written to the durable spool (gap findings included).",
		}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_siem_sent_total", Help: "OCSF events a collector confirmed, by sink (hec, syslog); resends count again.",
		}, []string{"sink"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_siem_send_failures_total", Help: "Failed deliveries to a collector, by sink; each is retried.",
		}, []string{"sink"}),
		dropped: map[string]prometheus.Counter{},
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_siem_spool_bytes", Help: "Bytes held in the SIEM spool's segment files.",
		}),
		pendingByte: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_siem_pending_bytes", Help: "Spooled bytes a sink has not had acknowledged yet.",
		}, []string{"sink"}),
	}
	for _, r := range []string{DropQueueFull, DropSpoolFull, DropUnencodable} {
		m.dropped[r] = droppedVec.WithLabelValues(r)
	}
	for _, s := range sinks {
		m.sent.WithLabelValues(s)
		m.failed.WithLabelValues(s)
		m.pendingByte.WithLabelValues(s)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.queued, m.spooled, m.sent, m.failed, droppedVec, m.spoolBytes, m.pendingByte} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
