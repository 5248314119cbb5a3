package e2e_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/client/updater"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
)

const modelName = "keystroke-ae"

// spec is the global autoencoder over keystroke window summaries, as the fleet trains it.
var spec = models.Spec{Layers: []int{len(keystroke.SummaryNames()), 16, 6, 16, len(keystroke.SummaryNames())}, Activation: models.Tanh}

// typistRows returns the normalised summaries of n windows of 50 keystrokes (every 25) typed by
// the synthetic typist seed.
func typistRows(t testing.TB, seed uint64, n int) [][]float64 {
	t.Helper()
	rows := keystroke.Summaries(keystroke.NewTypist(seed).Type(25*n+25), 50, 25)
	if len(rows) < n {
		t.Fatalf("typist %d gave %d usable windows, want %d", seed, len(rows), n)
	}
	_, norm, err := models.NormaliseSummaries(keystroke.NewLayout(), nil, rows[:n], models.UserModelConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return norm
}

// timeline records what happened when, for waiting on and for the latency figures.
type timeline struct {
	mu     sync.Mutex
	start  time.Time
	events []mark
}

type mark struct {
	at   time.Time
	what string
}

func (tl *timeline) add(format string, a ...any) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.events = append(tl.events, mark{time.Now(), fmt.Sprintf(format, a...)})
}

// when returns the time of the first event named what.
func (tl *timeline) when(what string) (time.Time, bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for _, m := range tl.events {
		if m.what == what {
			return m.at, true
		}
	}
	return time.Time{}, false
}

func (tl *timeline) wait(t *testing.T, what string) time.Time {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if at, ok := tl.when(what); ok {
			return at
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %q; timeline:\n%s", what, tl)
	return time.Time{}
}

func (tl *timeline) String() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var b strings.Builder
	for _, m := range tl.events {
		fmt.Fprintf(&b, "  %8.3fs %s\n", m.at.Sub(tl.start).Seconds(), m.what)
	}
	return b.String()
}

func newKeys(t testing.TB) *release.KeySet {
	t.Helper()
	ks, err := release.NewKeySet(rand.Reader, time.Now().AddDate(1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestReleaseCycleMinIO runs the whole release path against real MinIO: a coordinator runs a
// federated round with three devices over gRPC; its release publisher signs the new version
// into the outbox, which publishes it to two regions, "us" (up) and "eu" (its MinIO stopped);
// a device updater in us installs the first version, picks up the new one, runs it in shadow
// on its user's windows and promotes it. Then eu's MinIO is restarted, crashes again right
// after the first object of the backlog is written, and is restarted once more: eu ends up with
// both releases, every object stored exactly once, and a device there installs the newest.
func TestReleaseCycleMinIO(t *testing.T) {
	us := miniotest.Shared(t, "vigil-e2e-us")
	euSrv := miniotest.Start(t)
	eu := euSrv.Store(t, "vigil-e2e-eu")
	euSrv.Stop() // the eu region is down from the start

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tl := &timeline{start: time.Now()}
	k := newKeys(t)

	// eu crashes again right after the first write that reaches it, and comes back a second
	// later: the outbox must finish the interrupted publication without writing anything twice.
	var restartErr error
	euRestarted := make(chan struct{})
	euCrashing := &miniotest.AfterWrites{Store: eu, N: 1, Hook: func() {
		euSrv.Stop()
		tl.add("eu crashed after its first write")
		go func() {
			defer close(euRestarted)
			time.Sleep(time.Second)
			restartErr = euSrv.Restart()
			tl.add("eu restarted again")
		}()
	}}
	outbox, err := release.NewOutbox(release.OutboxConfig{
		Dir: t.TempDir(), Model: modelName,
		Regions:    []release.Region{{Name: "us", Store: us}, {Name: "eu", Store: euCrashing}},
		ReleaseKey: k.Release, TimestampKey: k.Timestamp,
		InitialBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Events: func(e release.OutboxEvent) {
			if e.Err == nil {
				tl.add("%s has v%d", e.Region, e.Version)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go outbox.Run(ctx)

	// The coordinator, with the release publisher on top of the outbox.
	pub, err := coordinator.NewReleasePublisher(outbox, coordinator.ReleasePublisherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const devices = 3
	coord, err := coordinator.New(ctx, coordinator.Config{
		Store: st, Spec: spec, FeatureSet: keystroke.TimingFeatureSet, InitSeed: 1, Publisher: pub,
		DevicesPerRound: devices, MinUpdates: devices, MinEnrolled: devices, RoundTimeout: 30 * time.Second,
		Rounds: 1, TickInterval: 10 * time.Millisecond,
		// This test is about the release path; the privacy of rounds has its own tests.
		Privacy: coordinator.Privacy{InsecureNoDP: true},
		Events: func(e coordinator.Event) {
			if e.Kind == coordinator.RoundCompleted {
				tl.add("round completed: v%d", e.Version)
			}
		},
	}, coordinator.Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	coord.Register(srv)
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	coordDone := make(chan error, 1)
	go func() { coordDone <- coord.Run(ctx) }()

	// The device of user 0 in us, polling every 100 ms.
	const interval = 100 * time.Millisecond
	dev, err := updater.New(updater.Config{
		Store: us, Model: modelName, FeatureSet: keystroke.TimingFeatureSet, Dir: t.TempDir(), PinnedRoot: k.RootEnvelope,
		Interval: interval, ShadowWindows: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	windows := make(chan []float64)
	var promoted *updater.Event
	go dev.Run(ctx, windows, func(ev updater.Event, err error) {
		switch {
		case errors.Is(err, store.ErrNotFound): // nothing published yet
		case err != nil:
			if ctx.Err() == nil {
				t.Errorf("us device: %v", err)
			}
		default:
			if ev.Kind == updater.Promoted || ev.Kind == updater.Rejected {
				promoted = &ev
			}
			tl.add("us device: %s v%d", ev.Kind, ev.Version)
		}
	})
	tl.wait(t, "us device: installed v1")

	// The round: devices train on their users' data and the coordinator releases v2.
	agentCtx, stopAgents := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range devices {
		a, err := client.New(client.Config{
			DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: vigilv1.NewCoordinatorClient(conn),
			Data: client.Rows(typistRows(t, uint64(i+1), 30)), Sealer: client.InsecurePlaintext{},
			FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(agentCtx) }()
	}
	if err := <-coordDone; err != nil {
		t.Fatal(err)
	}
	stopAgents()
	wg.Wait()

	// The us device picks v2 up and shadows it on windows of its user it did not train on.
	staged := tl.wait(t, "us device: staged v2")
	for _, w := range typistRows(t, 1, 50)[30:] {
		windows <- w
	}
	tl.wait(t, "us device: promoted v2")
	if promoted == nil || promoted.Kind != updater.Promoted {
		t.Fatalf("us device: %+v", promoted)
	}
	t.Logf("shadow: %+v", *promoted.Stats)
	if !reflect.DeepEqual(dev.Current().Params, coord.Global().Params) || dev.Previous().Version != 1 {
		t.Fatal("us device does not run the coordinator's v2 with v1 kept")
	}

	// eu is still down: the outbox reports it, and a device there gets errors, never a release.
	var euStatus release.RegionStatus
	for _, s := range outbox.Status() {
		if s.Region == "eu" {
			euStatus = s
		}
	}
	if euStatus.Published != 0 || euStatus.Pending != 2 || euStatus.Failures == 0 || euStatus.LastError == nil {
		t.Fatalf("eu status while down: %+v", euStatus)
	}
	euDevice := func() *updater.Updater {
		u, err := updater.New(updater.Config{Store: eu, Model: modelName, FeatureSet: keystroke.TimingFeatureSet, Dir: t.TempDir(), PinnedRoot: k.RootEnvelope})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	if ev, err := euDevice().Poll(ctx); err == nil {
		t.Fatalf("eu device while eu is down: %+v", ev)
	}

	// eu comes back (and crashes once more inside the outbox's first write).
	tl.add("eu restarted")
	if err := euSrv.Restart(); err != nil {
		t.Fatal(err)
	}
	tl.wait(t, "eu has v2")
	<-euRestarted
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	for v := uint64(1); v <= 2; v++ {
		objs := miniotest.Versions(t, eu, release.ReleasePrefix(modelName)+fmt.Sprint(v)+"/")
		if len(objs) != 3 {
			t.Errorf("eu v%d objects %v, want params.f64, meta.json and the manifest", v, objs)
		}
		for key, n := range objs {
			if n != 1 {
				t.Errorf("eu: %s stored %d times, want once", key, n)
			}
		}
	}
	ed := euDevice()
	if ev, err := ed.Poll(ctx); err != nil || ev.Kind != updater.Installed || ev.Version != 2 {
		t.Fatalf("eu device after recovery: %+v, %v", ev, err)
	}
	if !reflect.DeepEqual(ed.Current().Params, coord.Global().Params) {
		t.Fatal("eu device runs other parameters than the coordinator's v2")
	}
	if got := outbox.Queued(); !reflect.DeepEqual(got, []uint64{2}) {
		t.Fatalf("outbox holds %v once both regions have v2", got)
	}

	// The figures.
	round := tl.wait(t, "round completed: v2")
	usV2 := tl.wait(t, "us has v2")
	euBack, _ := tl.when("eu restarted")
	euV2 := tl.wait(t, "eu has v2")
	t.Logf("timeline:\n%s", tl)
	t.Logf("round completed -> in us store: %v; in us store -> staged on the us device: %v (poll interval %v); round -> staged: %v",
		usV2.Sub(round).Round(time.Millisecond), staged.Sub(usV2).Round(time.Millisecond), interval, staged.Sub(round).Round(time.Millisecond))
	t.Logf("eu restarted -> eu holds v1 and v2 (through one more crash): %v", euV2.Sub(euBack).Round(time.Millisecond))
}
