package coordinator_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// embeddedTier is a tier for model on an embedded JetStream server of the test's own.
func embeddedTier(t *testing.T, model string) *cluster.Tier {
	t.Helper()
	return embeddedTierOf(t, cluster.Config{Model: model, Replicas: 1})
}

// embeddedTierOf is embeddedTier with cfg.
func embeddedTierOf(t *testing.T, cfg cluster.Config) *cluster.Tier {
	t.Helper()
	ctx := context.Background()
	srv, err := cluster.StartEmbedded(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	tier, err := cluster.Open(ctx, nc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tier
}

// clusterRound starts an encrypted leader on a tier of its own for one round in which all of
// devices are sampled, runs it until ctx ends (its result on the channel returned), and
// enrols the devices.
func clusterRound(t *testing.T, ctx context.Context, devices []string) (*encrypted, *cluster.Tier, <-chan error) {
	t.Helper()
	tier := embeddedTier(t, "keystroke-ae")
	f, done := clusterRoundOn(t, ctx, tier, devices, len(devices))
	return f, tier, done
}

// clusterRoundOn is clusterRound on tier, the round released with minUpdates of them.
func clusterRoundOn(t *testing.T, ctx context.Context, tier *cluster.Tier, devices []string, minUpdates int) (*encrypted, <-chan error) {
	t.Helper()
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: minUpdates, MinEnrolled: len(devices),
		RoundTimeout: time.Minute, Cluster: tier, StateDir: t.TempDir()}, true)
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	for _, d := range devices {
		f.enroll(t, d)
	}
	return f, done
}

// serveFrontend serves a frontend of tier over gRPC on loopback and returns a client of it.
func serveFrontend(t *testing.T, f *encrypted, tier *cluster.Tier) vigilv1.CoordinatorClient {
	t.Helper()
	fe, err := coordinator.NewFrontend(coordinator.FrontendConfig{Tier: tier, Key: f.key, VerifySignatures: f.signed})
	if err != nil {
		t.Fatal(err)
	}
	return vigilv1.NewCoordinatorClient(serveLoopback(t, fe))
}

// waitRun waits for Run's result on done, failing with what after three minutes.
func waitRun(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal(what)
	}
}

// sealedUpdate is device d's encrypted answer to its task tk, signed when d has a key.
func (f *encrypted) sealedUpdate(t *testing.T, tk *vigilv1.Task, d string, vals []float64) *vigilv1.SubmitUpdateRequest {
	t.Helper()
	enc, err := he.NewEncryptor(f.key)
	if err != nil {
		t.Fatal(err)
	}
	cts, err := enc.Encrypt(vals, 1, he.UpdateBinding(f.key.Epoch, tk.GetRound(), d, tk.GetNonce()))
	if err != nil {
		t.Fatal(err)
	}
	req := &vigilv1.SubmitUpdateRequest{DeviceId: d, Round: tk.GetRound(), Nonce: tk.GetNonce(), BaseVersion: tk.GetBaseVersion(),
		Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_CKKS_THRESHOLD, Dimension: uint64(len(vals)),
			ParamsId: f.key.Params().ID(), KeyEpoch: f.key.Epoch, Ciphertexts: cts}}
	if key := f.devices[d]; key != nil {
		signUpdate(t, key, f.key, tk, req)
	}
	return req
}

// vector is a deterministic update of the model's size, scaled.
func vector(scale float64) []float64 {
	n := spec.NumParams()
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * math.Sin(float64(i)) / math.Sqrt(float64(n))
	}
	return v
}

// checkAverage checks that version 2 is version 1 plus the average of the scales' vectors.
func checkAverage(t *testing.T, f *encrypted, g coordinator.GlobalModel, scales []float64) {
	t.Helper()
	v1, err := coordinator.LoadModel(context.Background(), f.store, "keystroke-ae", 1)
	if err != nil {
		t.Fatal(err)
	}
	var mean float64
	for _, s := range scales {
		mean += s / float64(len(scales))
	}
	want := vector(mean)
	var worst float64
	for i := range want {
		worst = max(worst, math.Abs(g.Params[i]-v1.Params[i]-want[i]))
	}
	if g.Participants != len(scales) || worst > 1e-6 {
		t.Fatalf("%d participants, max error %.3g of the clip norm, want %d and at most 1e-6", g.Participants, worst, len(scales))
	}
}

// TestClusterResendAfterTheDeadline: a device whose update a frontend stored sends it again
// after the round's deadline, not having heard the answer. The frontend, whose engine never
// adds updates, tells it DUPLICATE (its update is in, as the tier says), not that it missed the
// round; a device that sent nothing is told the deadline passed.
func TestClusterResendAfterTheDeadline(t *testing.T) {
	ctx := context.Background()
	f, tier, done := clusterRound(t, ctx, []string{"a", "b"})
	var mu sync.Mutex
	now := time.Now()
	fe, err := coordinator.NewFrontend(coordinator.FrontendConfig{Tier: tier, Key: f.key, VerifySignatures: f.signed,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	if err != nil {
		t.Fatal(err)
	}
	front := vigilv1.NewCoordinatorClient(serveLoopback(t, fe))
	a := f.sealedUpdate(t, waitTask(t, f.api, "a"), "a", vector(0.1))
	if _, err := front.SubmitUpdate(ctx, a); err != nil {
		t.Fatal(err)
	}
	b := f.sealedUpdate(t, waitTask(t, f.api, "b"), "b", vector(0.2))
	mu.Lock()
	now = now.Add(2 * time.Minute) // past the round's one minute, for the frontend
	mu.Unlock()
	if _, err := front.SubmitUpdate(ctx, a); coordinator.Reason(err) != coordinator.ReasonDuplicate {
		t.Errorf("a sending again after the deadline: %v, want %s", err, coordinator.ReasonDuplicate)
	}
	if _, err := front.SubmitUpdate(ctx, b); coordinator.Reason(err) != coordinator.ReasonDeadline {
		t.Errorf("b sending first after the deadline: %v, want %s", err, coordinator.ReasonDeadline)
	}
	if _, err := f.api.SubmitUpdate(ctx, b); err != nil {
		t.Fatal(err)
	}
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), []float64{0.1, 0.2})
}

// TestClusterRoundThroughFrontends runs an encrypted round whose devices hand their updates to
// two frontends and the leader: each update lands once though every device sends it twice,
// misfits are refused at the frontend, and the released average is exactly the devices'.
func TestClusterRoundThroughFrontends(t *testing.T) {
	devices := []string{"a", "b", "c", "d", "e"}
	ctx := context.Background()
	f, tier, done := clusterRound(t, ctx, devices)
	fronts := []vigilv1.CoordinatorClient{serveFrontend(t, f, tier), serveFrontend(t, f, tier), f.api}

	var scales []float64
	for i, d := range devices {
		tk := waitTask(t, f.api, d)
		if i == 0 {
			// Misfits, refused by the frontend before anything is stored.
			bad := f.sealedUpdate(t, tk, d, vector(0.1))
			bad.Signature[0] ^= 1
			if _, err := fronts[0].SubmitUpdate(ctx, bad); status.Code(err) != codes.PermissionDenied || coordinator.Reason(err) != coordinator.ReasonBadSignature {
				t.Errorf("badly signed update: %v, want PermissionDenied %s", err, coordinator.ReasonBadSignature)
			}
			stale := f.sealedUpdate(t, tk, d, vector(0.1))
			stale.Nonce = make([]byte, len(stale.Nonce))
			if _, err := fronts[0].SubmitUpdate(ctx, stale); coordinator.Reason(err) != coordinator.ReasonBadNonce {
				t.Errorf("update with another nonce: %v, want %s", err, coordinator.ReasonBadNonce)
			}
			short := f.sealedUpdate(t, tk, d, vector(0.1)[:100])
			if _, err := fronts[0].SubmitUpdate(ctx, short); status.Code(err) != codes.InvalidArgument {
				t.Errorf("update of the wrong dimension: %v, want InvalidArgument", err)
			}
		}
		scale := 0.1 * float64(i+1)
		req := f.sealedUpdate(t, tk, d, vector(scale))
		if _, err := fronts[i%len(fronts)].SubmitUpdate(ctx, req); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		// A device that did not hear the answer sends again, to the same frontend or another.
		for _, again := range []int{i, i + 1} {
			if _, err := fronts[again%len(fronts)].SubmitUpdate(ctx, req); coordinator.Reason(err) != coordinator.ReasonDuplicate {
				t.Errorf("%s sending again: %v, want %s", d, err, coordinator.ReasonDuplicate)
			}
		}
		scales = append(scales, scale)
	}
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), scales)
}

// TestClusterLeaderRestartKeepsAcknowledgedUpdates stops the leader in the middle of a round:
// frontends go on acknowledging updates while it is down, and the restarted leader (same state
// directory, same tier) adds every acknowledged update once and releases the round.
func TestClusterLeaderRestartKeepsAcknowledgedUpdates(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	devices := []string{"a", "b", "c", "d"}
	state := t.TempDir()
	cfg := coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: len(devices), MinEnrolled: len(devices),
		RoundTimeout: time.Minute, Cluster: tier, StateDir: state}
	f := startEncrypted(t, cfg, true)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	for _, d := range devices {
		f.enroll(t, d)
	}
	front := serveFrontend(t, f, tier)
	tasks := map[string]*vigilv1.Task{}
	for _, d := range devices {
		tasks[d] = waitTask(t, f.api, d)
	}
	var scales []float64
	submit := func(i int) {
		t.Helper()
		scale := 0.2 * float64(i+1)
		if _, err := front.SubmitUpdate(context.Background(), f.sealedUpdate(t, tasks[devices[i]], devices[i], vector(scale))); err != nil {
			t.Fatalf("%s: %v", devices[i], err)
		}
		scales = append(scales, scale)
	}
	submit(0)
	submit(1)
	// The state file leaves the sum out but keeps which tasks were submitted, for read-only
	// tools, once the leader has followed both.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, err := coordinator.ReadStatus(state)
		if err == nil && st.GetOpenRound().GetSubmitted() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status read from the state: %d submitted, %v; want 2", st.GetOpenRound().GetSubmitted(), err)
		}
	}
	stop()
	<-done
	// The leader is down; the frontend still takes updates for the round.
	submit(2)
	submit(3)

	cfg.Store, cfg.Spec, cfg.FeatureSet, cfg.Root = f.store, spec, keystroke.TimingFeatureSet, f.root
	cfg.Privacy.ClipNorm, cfg.Privacy.InsecureNoDP = 1, true
	// The state file left the sum out: the round's updates are the tier's, and a leader
	// started without the tier says so rather than resume the round without them.
	withoutTier := cfg
	withoutTier.Cluster = nil
	if _, err := coordinator.New(context.Background(), withoutTier, f.sealing); err == nil || !strings.Contains(err.Error(), "start with the tier") {
		t.Fatalf("resuming a tier's round without the tier: %v", err)
	}
	leader, err := coordinator.New(context.Background(), cfg, f.sealing)
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- leader.Run(context.Background()) }()
	waitRun(t, done, "the restarted leader did not complete the round")
	checkAverage(t, f, leader.Global(), scales)
}

// TestDeposedLeaderDoesNotWrite is a leader whose lease ran out while it was frozen: on its
// next state write it stops, and the state file, now its successor's, is left as it was.
func TestDeposedLeaderDoesNotWrite(t *testing.T) {
	state := t.TempDir()
	var deposed atomic.Bool
	f := startWith(t, coordinator.Config{Rounds: 1, DevicesPerRound: 2, MinUpdates: 2, RoundTimeout: time.Minute, StateDir: state,
		Leading: func() error {
			if deposed.Load() {
				return cluster.ErrLeaseLost
			}
			return nil
		}}, coordinator.Insecure{})
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(context.Background()) }()
	if _, err := f.api.Enroll(context.Background(), &vigilv1.EnrollRequest{DeviceId: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.api.GetTask(context.Background(), &vigilv1.GetTaskRequest{DeviceId: "a"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(state, "coordinator.state")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	deposed.Store(true)
	// A change that must be written: a second device enrols and calls again.
	f.api.Enroll(context.Background(), &vigilv1.EnrollRequest{DeviceId: "b"})
	go f.api.GetTask(context.Background(), &vigilv1.GetTaskRequest{DeviceId: "b"})
	select {
	case err := <-done:
		if !errors.Is(err, cluster.ErrLeaseLost) {
			t.Fatalf("Run: %v, want ErrLeaseLost", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a deposed leader went on running")
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Fatal("a deposed leader wrote the state file")
	}
}

// TestClusterDevicesDoTheirTaskOnce runs real device agents against a leader with a tier: the
// leader adds an update only after the tier stored it, and meanwhile would hand the device the
// same task again; the device must not train, noise, encrypt and send it a second time.
func TestClusterDevicesDoTheirTaskOnce(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	const devices, rounds = 4, 3
	f := startEncrypted(t, coordinator.Config{Rounds: rounds, DevicesPerRound: devices, MinUpdates: devices, MinEnrolled: devices,
		RoundTimeout: 30 * time.Second, Cluster: tier, StateDir: t.TempDir(), Privacy: coordinator.Privacy{ClipNorm: 1}}, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := range devices {
		id := fmt.Sprintf("dev-%d", i)
		keys, err := client.NewSignedKeys(f.api, f.keys.RootEnvelope, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, err := client.New(client.Config{DeviceID: id, Coordinator: f.api, Data: client.Rows(typistRows(t, uint64(i+1), 30)), Identity: f.identity(t, id),
			Sealer: client.NewThresholdSealer(id, keys), FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { a.Run(ctx) })
	}
	if err := f.coord.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	var again int
	for len(f.events) > 0 {
		if e := <-f.events; e.Kind == coordinator.UpdateRejected && coordinator.Reason(e.Err) == coordinator.ReasonDuplicate {
			again++
		}
	}
	if f.coord.Completed() != rounds || again > 0 {
		t.Fatalf("%d rounds completed; devices sent a task's update again %d times", f.coord.Completed(), again)
	}
}
