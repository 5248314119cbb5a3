package coordinator_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// TestFrontendOtherBlobsRefused is a frontend given another object store than its round
// leader's, as one started before any leader recorded its store, whose check at start (vigil
// coordinator --frontend; NewFrontend makes none) had nothing to compare with: the tier says
// so before the leader records it. Updates it stored would be where the leader never reads them. When
// it meets the round it checks again and refuses them UNAVAILABLE, naming the store, logged
// once however many it refuses until it checks again, and the device sends to a frontend with
// the leader's store. That one refuses in turn, within storeRecheck, once a standby with
// another store has taken over the round.
func TestFrontendOtherBlobsRefused(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tierWith, _ := tiersOfOneServer(t, ctx)
	var down atomic.Bool // the store of the frontend with the leader's store answers nothing
	open := func(dir string, flaky bool) *cluster.Tier {
		t.Helper()
		fs := dirStore(t, dir)
		if flaky {
			return tierWith(unreachable{fs, &down})
		}
		return tierWith(fs)
	}
	leaders := t.TempDir()
	leader, other, same, standby := open(leaders, false), open(t.TempDir(), false), open(leaders, true), open(t.TempDir(), false)
	if err := other.CheckBlobs(ctx); err != nil {
		t.Fatalf("before any leader recorded its store: %v, want nothing to compare with", err)
	}

	if err := leader.MarkBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	devices := []string{"a", "b", "c", "d"}
	f, done := clusterRoundOn(t, ctx, leader, devices, 2)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	var logs syncBuffer
	frontend := func(tier *cluster.Tier, log *syncBuffer) vigilv1.CoordinatorClient {
		t.Helper()
		cfg := coordinator.FrontendConfig{Tier: tier, Key: f.key, VerifySignatures: f.signed,
			Now: func() time.Time { return time.Unix(0, clock.Load()) }}
		if log != nil {
			cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
		}
		fe, err := coordinator.NewFrontend(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return vigilv1.NewCoordinatorClient(serveLoopback(t, fe))
	}
	wrong, right := frontend(other, &logs), frontend(same, nil)
	// A store that cannot be read says nothing of whose it is: refused, and checked again a
	// second later rather than in storeRecheck.
	down.Store(true)
	req := f.sealedUpdate(t, waitTask(t, f.api, "a"), "a", vector(0.1))
	if _, err := right.SubmitUpdate(ctx, req); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "cannot check its object store") {
		t.Fatalf("device a while the frontend's store is down: %v, want UNAVAILABLE, the store unchecked", err)
	}
	down.Store(false)
	clock.Add(int64(time.Second)) // a store that could not be read is checked again a second later
	var scales []float64
	for i, d := range devices[:2] {
		scale := 0.1 * float64(i+1)
		req := f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(scale))
		_, err := wrong.SubmitUpdate(ctx, req)
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "object store") {
			t.Fatalf("device %s at the frontend with another store: %v, want UNAVAILABLE naming the object store", d, err)
		}
		if _, err := right.SubmitUpdate(ctx, req); err != nil {
			t.Fatalf("device %s at the frontend with the leader's store: %v", d, err)
		}
		scales = append(scales, scale)
	}
	if n := strings.Count(logs.String(), "it refuses updates until it is"); n != 1 {
		t.Errorf("the frontend with another store logged it %d times for two refusals, want once:\n%s", n, logs.String())
	}

	// A standby given another store takes over, and records it.
	if err := standby.MarkBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	req = f.sealedUpdate(t, waitTask(t, f.api, "c"), "c", vector(0.3))
	if _, err := right.SubmitUpdate(ctx, req); err != nil {
		t.Fatalf("device c before the frontend checked again: %v", err)
	}
	scales = append(scales, 0.3)
	clock.Add(int64(11 * time.Second))
	req = f.sealedUpdate(t, waitTask(t, f.api, "d"), "d", vector(0.4))
	if _, err := right.SubmitUpdate(ctx, req); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "object store") {
		t.Fatalf("device d after a leader with another store took over: %v, want UNAVAILABLE naming the object store", err)
	}
	// The leader here still reads its own store; the device sends to it.
	if _, err := f.api.SubmitUpdate(ctx, req); err != nil {
		t.Fatalf("device d at the leader: %v", err)
	}
	scales = append(scales, 0.4)
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), scales)
}

// unreachable is an object store that fails every read while down is set.
type unreachable struct {
	cluster.Blobs
	down *atomic.Bool
}

func (u unreachable) Get(ctx context.Context, key string) ([]byte, error) {
	if u.down.Load() {
		return nil, errors.New("connection refused")
	}
	return u.Blobs.Get(ctx, key)
}

// TestFrontendStoreCheckedOnceAtATime: while the frontend's object store is slow to answer,
// updates arriving together wait for one check and share its answer, rather than each running
// its own in turn (a review saw a request wait 3.5 s behind checks of 1 s); an answer that
// says nothing of the store is kept a second, not storeRecheck.
func TestFrontendStoreCheckedOnceAtATime(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open, _ := tiersOfOneServer(t, ctx)
	fs := dirStore(t, t.TempDir())
	slow := &gatedStore{Blobs: fs, open: make(chan struct{})}
	slow.fail.Store(true)
	leader := open(fs)
	if err := leader.MarkBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	devices := []string{"a", "b", "c", "d"}
	f, done := clusterRoundOn(t, ctx, leader, devices, 2)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	fe, err := coordinator.NewFrontend(coordinator.FrontendConfig{Tier: open(slow), Key: f.key, VerifySignatures: f.signed,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	front := vigilv1.NewCoordinatorClient(serveLoopback(t, fe))
	reqs := map[string]*vigilv1.SubmitUpdateRequest{}
	for i, d := range devices {
		reqs[d] = f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(0.1*float64(i+1)))
	}
	errs := make(chan error, len(devices))
	for _, d := range devices {
		go func() {
			_, err := front.SubmitUpdate(ctx, reqs[d])
			errs <- err
		}()
	}
	for slow.reads.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // the others reach the check under way (or come after it)
	close(slow.open)
	for range devices {
		if err := <-errs; status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "cannot check its object store") {
			t.Fatalf("an update while the store could not be read: %v, want UNAVAILABLE, the store unchecked", err)
		}
	}
	if n := slow.reads.Load(); n != 1 {
		t.Fatalf("%d checks of the store for %d updates at once, want 1", n, len(devices))
	}
	slow.fail.Store(false)
	if _, err := front.SubmitUpdate(ctx, reqs["a"]); status.Code(err) != codes.Unavailable || slow.reads.Load() != 1 {
		t.Fatalf("within a second of the failed check: %v after %d checks, want its answer again, not another check", err, slow.reads.Load())
	}
	clock.Add(int64(time.Second))
	var scales []float64
	for i, d := range devices {
		if _, err := front.SubmitUpdate(ctx, reqs[d]); err != nil {
			t.Fatalf("device %s once the store answers: %v", d, err)
		}
		scales = append(scales, 0.1*float64(i+1))
	}
	if n := slow.reads.Load(); n != 2 {
		t.Fatalf("%d checks of the store, want 2", n)
	}
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), scales)
}

// gatedStore is an object store whose identity reads wait for open and then fail while fail
// is set; reads counts them.
type gatedStore struct {
	cluster.Blobs
	open  chan struct{}
	fail  atomic.Bool
	reads atomic.Int32
}

func (g *gatedStore) Get(ctx context.Context, key string) ([]byte, error) {
	if !strings.HasSuffix(key, "/store-id") {
		return g.Blobs.Get(ctx, key)
	}
	g.reads.Add(1)
	<-g.open
	if g.fail.Load() {
		return nil, errors.New("store timed out")
	}
	return g.Blobs.Get(ctx, key)
}

// tiersOfOneServer starts an embedded JetStream server and returns what opens a tier on it,
// each with an object store of its own and a connection of its own, and the server's URL.
func tiersOfOneServer(t *testing.T, ctx context.Context) (open func(cluster.Blobs) *cluster.Tier, url string) {
	t.Helper()
	srv, err := cluster.StartEmbedded(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return func(blobs cluster.Blobs) *cluster.Tier {
		t.Helper()
		nc, err := nats.Connect(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		tier, err := cluster.Open(ctx, nc, cluster.Config{Model: "keystroke-ae", Replicas: 1, Blobs: blobs})
		if err != nil {
			t.Fatal(err)
		}
		return tier
	}, srv.URL()
}

func dirStore(t *testing.T, dir string) *store.FS {
	t.Helper()
	fs, err := store.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}
