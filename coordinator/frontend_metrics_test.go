package coordinator_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilauth/vigil/coordinator"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestFrontendMetrics counts what a frontend does with a round's updates, as the leader counts
// its own: two stored, one device sending again (a duplicate), one badly signed update refused,
// and the time each store took.
func TestFrontendMetrics(t *testing.T) {
	devices := []string{"a", "b"}
	ctx := context.Background()
	f, tier, done := clusterRound(t, ctx, devices)
	reg := prometheus.NewRegistry()
	fe, err := coordinator.NewFrontend(coordinator.FrontendConfig{Tier: tier, Key: f.key, VerifySignatures: f.signed, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	front := vigilv1.NewCoordinatorClient(serveLoopback(t, fe))
	for i, d := range devices {
		tk := waitTask(t, f.api, d)
		req := f.sealedUpdate(t, tk, d, vector(0.1*float64(i+1)))
		if i == 0 {
			bad := f.sealedUpdate(t, tk, d, vector(0.1))
			bad.Signature[0] ^= 1
			if _, err := front.SubmitUpdate(ctx, bad); coordinator.Reason(err) != coordinator.ReasonBadSignature {
				t.Fatalf("badly signed update: %v", err)
			}
		}
		if _, err := front.SubmitUpdate(ctx, req); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if i == 0 {
			if _, err := front.SubmitUpdate(ctx, req); coordinator.Reason(err) != coordinator.ReasonDuplicate {
				t.Fatalf("%s again: %v, want %s", d, err, coordinator.ReasonDuplicate)
			}
		}
	}
	waitRun(t, done, "the round did not complete")

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{} // result/reason -> updates
	stores := map[string]uint64{}  // result -> timed stores
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch mf.GetName() {
			case "vigil_updates_total":
				counts[labels["result"]+"/"+labels["reason"]] = m.GetCounter().GetValue()
			case "vigil_frontend_store_seconds":
				stores[labels["result"]] = m.GetHistogram().GetSampleCount()
				if m.GetHistogram().GetSampleSum() <= 0 {
					t.Errorf("store time of %s: %v", labels["result"], m.GetHistogram().GetSampleSum())
				}
			}
		}
	}
	want := map[string]float64{"stored/": 2, "rejected/" + coordinator.ReasonDuplicate: 1, "rejected/" + coordinator.ReasonBadSignature: 1}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("vigil_updates_total %s = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	// The badly signed update is refused before it is stored: only the stored and the duplicate are timed.
	if stores["stored"] != 2 || stores[coordinator.ReasonDuplicate] != 1 || len(stores) != 2 {
		t.Errorf("vigil_frontend_store_seconds samples %v, want 2 stored and 1 %s", stores, coordinator.ReasonDuplicate)
	}
}
