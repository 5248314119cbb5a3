package main

import (
	"net"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/rpcmetrics"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// serveAdmin serves the coordinator's Admin API on addr: mutual TLS with the coordinator's
// certificate, and a guard that admits operator certificates of its CA only (`vigil pki
// operator`), so a device or trustee certificate cannot pause rounds or remove devices.
func serveAdmin(addr string, coord *coordinator.Coordinator, auth *pki.Authority, creds pki.Credentials, rpcm *rpcmetrics.Metrics, regions *regionTracker) (stop func(), bound string, err error) {
	lim, err := pki.NewLimiter(pki.LimiterConfig{Rate: 5, Burst: 20})
	if err != nil {
		return nil, "", err
	}
	g, err := pki.NewGuard(pki.GuardConfig{Roles: []pki.Role{pki.RoleOperator}, Revocations: auth.Revocations, Limiter: lim})
	if err != nil {
		return nil, "", err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	// Every Admin request is small, so this server's one receive limit is theirs, and a caller
	// without a certificate is refused at the length prefix, before a body is read.
	limits, err := pki.NewRequestLimits(pki.RequestLimitsConfig{MaxBytes: vigilv1.MaxRequestBytes})
	if err != nil {
		return nil, "", err
	}
	opts := append(append(rpcm.ServerOptions(), limits.ServerOptions()...), g.ServerOptions()...)
	opts = append(opts, grpc.MaxRecvMsgSize(vigilv1.MaxSmallRequestBytes), grpc.Creds(credentials.NewTLS(pki.ServerTLS(creds.TLSCertificate(), auth.CA.Pool()))))
	srv := grpc.NewServer(opts...)
	coord.RegisterAdmin(srv, coordinator.AdminConfig{Regions: regions.status, Version: buildVersion()})
	go srv.Serve(lis)
	return srv.Stop, lis.Addr().String(), nil
}

// regionTracker keeps how publishing to each release region stands, from the outbox's events,
// for `vigil status` and the metrics.
type regionTracker struct {
	mu      sync.Mutex
	regions map[string]*vigilv1.RegionStatus

	published *prometheus.GaugeVec
	success   *prometheus.GaugeVec
	failures  *prometheus.CounterVec
}

func newRegionTracker(reg prometheus.Registerer) (*regionTracker, error) {
	t := &regionTracker{
		regions: map[string]*vigilv1.RegionStatus{},
		published: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_release_published_version", Help: "Newest release version each region holds; compare with vigil_global_model_version for the lag.",
		}, []string{"region"}),
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_release_last_success_timestamp_seconds", Help: "When each region last took a release or pointer refresh.",
		}, []string{"region"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_release_publish_failures_total", Help: "Failed attempts to publish to each region.",
		}, []string{"region"}),
	}
	for _, c := range []prometheus.Collector{t.published, t.success, t.failures} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *regionTracker) record(e release.OutboxEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.regions[e.Region]
	if !ok {
		r = &vigilv1.RegionStatus{Name: e.Region}
		t.regions[e.Region] = r
	}
	at := e.At
	if at.IsZero() {
		at = time.Now()
	}
	if e.Err != nil {
		r.Failures, r.LastError = uint32(e.Failures), e.Err.Error()
		t.failures.WithLabelValues(e.Region).Inc()
		return
	}
	r.Failures, r.LastError = 0, ""
	r.PublishedVersion = max(r.PublishedVersion, e.Version)
	r.LastSuccess = timestamppb.New(at)
	t.published.WithLabelValues(e.Region).Set(float64(r.PublishedVersion))
	t.success.WithLabelValues(e.Region).Set(float64(at.Unix()))
}

func (t *regionTracker) status() []*vigilv1.RegionStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*vigilv1.RegionStatus
	for _, r := range t.regions {
		out = append(out, &vigilv1.RegionStatus{Name: r.Name, PublishedVersion: r.PublishedVersion, LastSuccess: r.LastSuccess,
			Failures: r.Failures, LastError: r.LastError})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out
}
