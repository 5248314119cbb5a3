package coordinator_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/crypto/sig"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
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
	if _, err := tier.Accept(ctx, tk.GetRound(), "victim", raw, cluster.Stamp{}); err != nil {
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

// TestAttackReplayAcrossParts is a compromised device that takes an honest device's encrypted
// update off the wire and hands it in as its own, re-bound to its own task and signed with its
// own key. The victim's frontend refuses it, its check sum having seen those ciphertexts; so
// the thief tries another frontend than the victim's: each frontend's own check sum sees one copy,
// and the frontends' partial sums merged would count the victim twice, past the sensitivity its
// noise is calibrated to. The leader, which follows only the headers of updates frontends
// keep, finds the copy by the fingerprint the frontend stored with it and refuses it, as it
// refuses a copy it reads itself; the round goes on without the thief, the victim counted once.
// (A copy re-randomised by adding an encryption of zero has another fingerprint and is not
// caught: that needs proofs that a device knows what it encrypted; see the README.)
func TestAttackReplayAcrossParts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	devices := []string{"victim", "thief", "honest-1", "honest-2"}
	tier := embeddedTier(t, "keystroke-ae")
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: 3, MinEnrolled: len(devices),
		RoundTimeout: 15 * time.Second, Cluster: tier, StateDir: t.TempDir()}, true)
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	for _, d := range devices {
		f.enroll(t, d)
	}
	fronts, _ := partFrontends(t, ctx, f, tier, "fe-a", "fe-b")

	victim := f.sealedUpdate(t, waitTask(t, f.api, "victim"), "victim", vector(0.5))
	if _, err := fronts[0].SubmitUpdate(ctx, victim); err != nil {
		t.Fatal(err)
	}
	tk := waitTask(t, f.api, "thief")
	stolen := f.sealedUpdate(t, tk, "thief", vector(0))
	binding := he.UpdateBinding(f.key.Epoch, tk.GetRound(), "thief", tk.GetNonce())
	for j, ct := range victim.GetUpdate().GetCiphertexts() {
		c := bytes.Clone(ct)
		copy(c[32:64], binding[:]) // the ciphertext header's binding
		stolen.Update.Ciphertexts[j] = c
	}
	signUpdate(t, f.devices["thief"], f.key, tk, stolen)
	if _, err := fronts[0].SubmitUpdate(ctx, stolen); coordinator.Reason(err) != coordinator.ReasonBadUpdate {
		t.Fatalf("the copy at the frontend that took the victim's update: %v, want %s", err, coordinator.ReasonBadUpdate)
	}
	if _, err := fronts[1].SubmitUpdate(ctx, stolen); err != nil {
		t.Fatalf("the copy at another frontend: %v (each frontend's own check sum cannot see the other's)", err)
	}
	scales := []float64{0.5}
	for i, d := range devices[2:] {
		scale := 0.1 * float64(i+1)
		if _, err := fronts[i].SubmitUpdate(ctx, f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(scale))); err != nil {
			t.Fatal(err)
		}
		scales = append(scales, scale)
	}
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), scales)
}

// swappingBlobs is the tier's object store as whoever can write to it (its operator, a stolen
// credential) makes it: the update of device victim comes back as other bytes.
type swappingBlobs struct {
	cluster.Blobs
	victim []byte
}

func (b swappingBlobs) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := b.Blobs.Get(ctx, key)
	if err == nil && bytes.Contains(data, b.victim) {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 1
	}
	return data, err
}

// TestAttackBlobStoreWriterSwapsUpdate is whoever can write to the tier's object store
// changing a device's stored update. The leader, reading it back, finds other bytes than the
// hash the round's stream holds and counts the update lost, logged: the round goes on and is
// released with the other devices' updates, as they were sent. It neither counts the changed
// bytes nor reads them again for good (it did, holding the round until its deadline and past).
func TestAttackBlobStoreWriterSwapsUpdate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tier := embeddedTierOf(t, cluster.Config{Model: "keystroke-ae", Replicas: 1, Blobs: swappingBlobs{dir, []byte("victim")}})
	devices := []string{"victim", "b", "c"}
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: 2, MinEnrolled: len(devices),
		RoundTimeout: 10 * time.Second, Cluster: tier, StateDir: t.TempDir()}, true)
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	for _, d := range devices {
		f.enroll(t, d)
	}
	var scales []float64
	for i, d := range devices {
		scale := 0.1 * float64(i+1)
		if _, err := f.api.SubmitUpdate(ctx, f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(scale))); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if d != "victim" {
			scales = append(scales, scale)
		}
	}
	waitRun(t, done, "the round was not released")
	checkAverage(t, f, f.coord.Global(), scales)
}
