package coordinator_test

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackDeviceCountsTwiceAcrossFrontends is a compromised device trying to weigh twice in
// one round, which would break the sensitivity bound its noise is calibrated to: it signs two
// different valid updates for its task and sends them at the same moment to two frontends,
// several times over. Exactly one is acknowledged, and the released average counts it once.
func TestAttackDeviceCountsTwiceAcrossFrontends(t *testing.T) {
	devices := []string{"honest-1", "honest-2", "attacker"}
	ctx := context.Background()
	f, tier, done := clusterRound(t, ctx, devices)
	fronts := []vigilv1.CoordinatorClient{serveFrontend(t, f, tier), serveFrontend(t, f, tier)}

	tk := waitTask(t, f.api, "attacker")
	attempts := []*vigilv1.SubmitUpdateRequest{f.sealedUpdate(t, tk, "attacker", vector(0.9)), f.sealedUpdate(t, tk, "attacker", vector(-0.7))}
	var (
		mu       sync.Mutex
		accepted []float64
		wg       sync.WaitGroup
	)
	for range 3 {
		for i, req := range attempts {
			wg.Go(func() {
				_, err := fronts[i].SubmitUpdate(ctx, req)
				switch {
				case err == nil:
					mu.Lock()
					accepted = append(accepted, []float64{0.9, -0.7}[i])
					mu.Unlock()
				case coordinator.Reason(err) != coordinator.ReasonDuplicate:
					t.Errorf("attempt %d: %v, want accepted or %s", i, err, coordinator.ReasonDuplicate)
				}
			})
		}
	}
	wg.Wait()
	if len(accepted) != 1 {
		t.Fatalf("%d of the attacker's updates were acknowledged, want exactly 1", len(accepted))
	}
	scales := []float64{accepted[0]}
	for i, d := range devices[:2] {
		scale := 0.1 * float64(i+1)
		if _, err := fronts[i].SubmitUpdate(ctx, f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(scale))); err != nil {
			t.Fatal(err)
		}
		scales = append(scales, scale)
	}
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), scales)
}

// TestAttackTierWriterForgesUpdate is whoever can write to the tier (a malicious coordinator
// tier, or someone holding its token) storing an update for a sampled device that the device
// never signed, before the device sends its own. The leader takes what the tier holds without
// checking signatures again, but the trustees check every contribution against the device's
// enrolled record: the round's sum is never opened and nothing is released.
func TestAttackTierWriterForgesUpdate(t *testing.T) {
	devices := []string{"victim", "honest"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, tier, done := clusterRound(t, ctx, devices)
	tk := waitTask(t, f.api, "victim")
	forged := f.sealedUpdate(t, tk, "victim", vector(5))
	attacker, err := sig.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signUpdate(t, attacker, f.key, tk, forged)
	raw, err := proto.Marshal(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, tk.GetRound(), "victim", raw, nil, ""); err != nil {
		t.Fatal(err)
	}
	// The victim's own update finds its place taken: a tier writer can drop a device's update,
	// as a malicious coordinator always could, but not stand in for it.
	if _, err := f.api.SubmitUpdate(ctx, f.sealedUpdate(t, tk, "victim", vector(0.1))); coordinator.Reason(err) != coordinator.ReasonDuplicate {
		t.Fatalf("the victim's own update: %v, want %s", err, coordinator.ReasonDuplicate)
	}
	if _, err := f.api.SubmitUpdate(ctx, f.sealedUpdate(t, waitTask(t, f.api, "honest"), "honest", vector(0.1))); err != nil {
		t.Fatal(err)
	}
	for failed := false; !failed; {
		select {
		case e := <-f.events:
			if e.Kind == coordinator.RoundCompleted {
				t.Fatalf("round %d was released with a forged update in it", e.Round)
			}
			if failed = e.Kind == coordinator.RoundFailed && e.Round == tk.GetRound(); failed {
				t.Logf("round %d failed: %v", e.Round, e.Err)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("the round neither failed nor completed")
		}
	}
	cancel()
	<-done
	if v := f.coord.Global().Meta.Version; v != 1 {
		t.Fatalf("global model v%d, want v1: nothing released", v)
	}
}
