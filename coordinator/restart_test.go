package coordinator_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// serve starts a coordinator over the given store and state directories and returns its client
// API and a function that stops it as abruptly as the test can: Run and the server end without
// any further writes.
func serve(t *testing.T, storeDir, stateDir string) (vigilv1.CoordinatorClient, *coordinator.Coordinator, func()) {
	t.Helper()
	return serveWith(t, storeDir, stateDir)
}

// serveWith is serve with population rounds (none: none).
func serveWith(t *testing.T, storeDir, stateDir string, populations ...*coordinator.PopulationRounds) (vigilv1.CoordinatorClient, *coordinator.Coordinator, func()) {
	t.Helper()
	st, err := store.NewFS(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := coordinator.New(context.Background(), coordinator.Config{
		Store: st, StateDir: stateDir, Spec: spec, FeatureSet: keystroke.TimingFeatureSet,
		DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: 3, RoundTimeout: time.Minute, Rounds: 1, LongPoll: 100 * time.Millisecond,
		Privacy: coordinator.Privacy{InsecureNoDP: true}, Populations: populations,
	}, coordinator.Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	c.Register(srv)
	go srv.Serve(lis)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			srv.Stop()
			conn.Close()
		})
	}
	t.Cleanup(stop)
	return vigilv1.NewCoordinatorClient(conn), c, stop
}

func waitTask(t *testing.T, api vigilv1.CoordinatorClient, device string) *vigilv1.Task {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r, err := api.GetTask(context.Background(), &vigilv1.GetTaskRequest{DeviceId: device})
		if err != nil {
			t.Fatal(err)
		}
		if r.GetTask() != nil {
			return r.GetTask()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no task for %s", device)
	return nil
}

func update(tk *vigilv1.Task, device string, value float64) *vigilv1.SubmitUpdateRequest {
	vals := make([]float64, spec.NumParams())
	vals[0] = value
	return &vigilv1.SubmitUpdateRequest{DeviceId: device, Round: tk.GetRound(), Nonce: tk.GetNonce(), BaseVersion: tk.GetBaseVersion(),
		Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: uint64(len(vals)), Values: vals}}
}

// TestRestartResumesRound stops the coordinator after two of three updates were acknowledged
// and starts a new one on the same directories: the round resumes with exactly those two, a
// resent update is refused as a duplicate, and the third completes the round.
func TestRestartResumesRound(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	ctx := context.Background()
	api, _, stop := serve(t, storeDir, stateDir)
	enrol(t, api, []string{"a", "b", "c"}...)
	ta, tb, tc := waitTask(t, api, "a"), waitTask(t, api, "b"), waitTask(t, api, "c")
	if _, err := api.SubmitUpdate(ctx, update(ta, "a", 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := api.SubmitUpdate(ctx, update(tb, "b", 10)); err != nil {
		t.Fatal(err)
	}
	stop()

	api, c, _ := serve(t, storeDir, stateDir)
	tc2 := waitTask(t, api, "c")
	if tc2.GetRound() != tc.GetRound() || string(tc2.GetNonce()) != string(tc.GetNonce()) {
		t.Fatalf("after restart c's task is round %d, want the resumed round %d with the same nonce", tc2.GetRound(), tc.GetRound())
	}
	if r, _ := api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "a"}); r.GetTask() != nil {
		t.Fatal("a got a task again although its update was acknowledged")
	}
	if _, err := api.SubmitUpdate(ctx, update(ta, "a", 1)); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("a's update sent again after the restart: %v, want AlreadyExists", err)
	}
	if _, err := api.SubmitUpdate(ctx, update(tc2, "c", 100)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Completed() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	g := c.Global()
	st, _ := store.NewFS(storeDir)
	v1, err := coordinator.LoadModel(ctx, st, "keystroke-ae", 1)
	if err != nil {
		t.Fatal(err)
	}
	// The average of 1, 10 and 100, each counted once.
	if g.Meta.Version != 2 || g.Participants != 3 || g.Params[0]-v1.Params[0] != 37 {
		t.Fatalf("released v%d with %d participants and Δp0 = %v; want v2, 3, 37", g.Meta.Version, g.Participants, g.Params[0]-v1.Params[0])
	}
}

func TestCorruptStateIsRefused(t *testing.T) {
	stateDir := t.TempDir()
	st, _ := store.NewFS(t.TempDir())
	if err := writeFile(stateDir+"/coordinator.state", []byte("\x08\x02garbage")); err != nil {
		t.Fatal(err)
	}
	_, err := coordinator.New(context.Background(), coordinator.Config{Store: st, StateDir: stateDir, Spec: spec}, coordinator.Insecure{})
	if err == nil {
		t.Fatal("corrupt state file accepted")
	}
}

// TestDisconnectMidUpload cancels an upload while its bytes are still on the wire: the
// coordinator never sees a partial update, and the round goes on with everything else.
func TestDisconnectMidUpload(t *testing.T) {
	api, c, _ := serve(t, t.TempDir(), t.TempDir())
	ctx := context.Background()
	enrol(t, api, []string{"a", "b", "c"}...)
	ta, tb := waitTask(t, api, "a"), waitTask(t, api, "b")
	if _, err := api.SubmitUpdate(ctx, update(ta, "a", 1)); err != nil {
		t.Fatal(err)
	}
	huge := update(tb, "b", 1)
	huge.Update.Values = make([]float64, 1<<20) // 8 MiB: long enough on the wire to cut
	huge.Update.Dimension = 1 << 20
	cut, cancel := context.WithTimeout(ctx, time.Millisecond)
	_, err := api.SubmitUpdate(cut, huge)
	cancel()
	if err == nil {
		t.Fatal("the cut upload succeeded")
	}
	if _, err := api.SubmitUpdate(ctx, update(tb, "b", 10)); err != nil {
		t.Fatalf("b's complete upload after the cut one: %v", err)
	}
	if _, err := api.SubmitUpdate(ctx, update(waitTask(t, api, "c"), "c", 100)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); c.Completed() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("round did not complete")
		}
	}
	if g := c.Global(); g.Participants != 3 {
		t.Fatalf("%d participants, want 3", g.Participants)
	}
}

// TestCrashInTheMiddleOfStoringAVersion: a crash in saveModel leaves a version's parameters
// without its meta.json. That version was never complete, so never released; the next round
// stores its model as the next free version, rather than failing to store it, after its
// charge, in every round from then on.
func TestCrashInTheMiddleOfStoringAVersion(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	ctx := context.Background()
	_, _, stop := serve(t, storeDir, stateDir) // stores v1
	stop()
	st, err := store.NewFS(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Create(ctx, "models/keystroke-ae/v0000000002/params.f64", make([]byte, 8*spec.NumParams())); err != nil {
		t.Fatal(err)
	}

	api, c, _ := serve(t, storeDir, stateDir)
	enrol(t, api, []string{"a", "b", "c"}...)
	for i, d := range []string{"a", "b", "c"} {
		if _, err := api.SubmitUpdate(ctx, update(waitTask(t, api, d), d, float64(i))); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); c.Completed() < 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the round did not complete: %v", c.Status().GetLastRound())
		}
	}
	g := c.Global()
	if g.Meta.Version != 3 || g.Meta.Parent != 1 {
		t.Fatalf("released v%d from v%d, want v3 from v1 (v2 left incomplete)", g.Meta.Version, g.Meta.Parent)
	}
	stored, err := coordinator.LoadModel(ctx, st, "keystroke-ae", 0)
	if err != nil || stored.Meta.Version != 3 {
		t.Fatalf("newest stored version: v%d, %v; want v3", stored.Meta.Version, err)
	}
	if metas, err := coordinator.ListVersions(ctx, st, "keystroke-ae"); err != nil || len(metas) != 2 {
		t.Fatalf("versions listed: %d, %v; want v1 and v3", len(metas), err)
	}
}

// TestCrashInTheMiddleOfStoringTheFirstVersion: the same crash at the first start, before v1
// was complete, does not keep the coordinator from starting.
func TestCrashInTheMiddleOfStoringTheFirstVersion(t *testing.T) {
	storeDir := t.TempDir()
	st, err := store.NewFS(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Create(context.Background(), "models/keystroke-ae/v0000000001/params.f64", []byte("cut short")); err != nil {
		t.Fatal(err)
	}
	_, c, _ := serve(t, storeDir, t.TempDir())
	if g := c.Global(); g.Meta.Version != 2 {
		t.Fatalf("first version stored as v%d, want v2 (v1 left incomplete)", g.Meta.Version)
	}
}
