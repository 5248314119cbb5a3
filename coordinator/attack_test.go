package coordinator_test

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/coordinator"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackCrossRoundReplay: device a's signed round-1 update, rebound to round 2 under
// device b's id (or resent by a for round 2), must not count: the device's signature covers
// the round, the device and the nonce. (The trustees refuse the same replay on their own:
// trustee.TestAttackCrossRoundReplay.)
func TestAttackCrossRoundReplay(t *testing.T) {
	f := startEncrypted(t, coordinator.Config{Rounds: 2, DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: 3, RoundTimeout: time.Minute}, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, d := range []string{"a", "b", "c"} {
		f.enroll(t, d)
	}
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	vals := make([]float64, spec.NumParams())
	vals[0] = 0.5
	var round1 *vigilv1.SubmitUpdateRequest
	for _, d := range []string{"a", "b", "c"} {
		req, err := f.submitEncrypted(t, d, vals)
		if err != nil {
			t.Fatal(err)
		}
		if d == "a" {
			round1 = req
		}
	}
	ta, tb := waitTask(t, f.api, "a"), waitTask(t, f.api, "b")
	if tb.GetRound() != round1.GetRound()+1 {
		t.Fatalf("second task for round %d, want %d", tb.GetRound(), round1.GetRound()+1)
	}
	asB := proto.Clone(round1).(*vigilv1.SubmitUpdateRequest)
	asB.DeviceId, asB.Round, asB.Nonce, asB.BaseVersion = "b", tb.GetRound(), tb.GetNonce(), tb.GetBaseVersion()
	again := proto.Clone(round1).(*vigilv1.SubmitUpdateRequest)
	again.Round, again.Nonce, again.BaseVersion = ta.GetRound(), ta.GetNonce(), ta.GetBaseVersion()
	for name, req := range map[string]*vigilv1.SubmitUpdateRequest{
		"a's round-1 update as b's in round 2": asB,
		"a's round-1 update resent in round 2": again,
	} {
		_, err := f.api.SubmitUpdate(ctx, req)
		if status.Code(err) != codes.PermissionDenied || coordinator.Reason(err) != coordinator.ReasonBadSignature {
			t.Fatalf("%s: %v, want PermissionDenied %s", name, err, coordinator.ReasonBadSignature)
		}
		t.Logf("%s: refused: %s", name, status.Convert(err).Message())
	}
	for _, d := range []string{"a", "b", "c"} {
		if _, err := f.submitEncrypted(t, d, vals); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if f.coord.Completed() != 2 {
		t.Fatalf("%d rounds completed, want 2", f.coord.Completed())
	}
}

// TestEncryptedRestartKeepsContributions: a coordinator stopped after two of three signed
// updates resumes the round with their contributions from its state directory, and the
// trustees, given all three, verify and decrypt the sum.
func TestEncryptedRestartKeepsContributions(t *testing.T) {
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: 3, RoundTimeout: time.Minute}, true)
	stateDir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cfg := coordinator.Config{Store: f.store, StateDir: stateDir, Spec: spec, FeatureSet: f.coord.Global().Meta.FeatureSet,
		DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: 3, RoundTimeout: time.Minute, Rounds: 1, LongPoll: 100 * time.Millisecond,
		Privacy: coordinator.Privacy{InsecureNoDP: true, ClipNorm: 1}, Root: f.root}
	// The fixture's coordinator only enrols; a second one with a state directory runs the round.
	c1, err := coordinator.New(ctx, cfg, f.sealing)
	if err != nil {
		t.Fatal(err)
	}
	f.api = serveAPI(t, c1)
	done := make(chan error, 1)
	go func() { done <- c1.Run(ctx) }() // Run makes enrolments durable
	for _, d := range []string{"a", "b", "c"} {
		f.enroll(t, d)
	}
	vals := make([]float64, spec.NumParams())
	vals[1] = 0.25
	tc := waitTask(t, f.api, "c")
	for _, d := range []string{"a", "b"} {
		if _, err := f.submitEncrypted(t, d, vals); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	<-done

	c2, err := coordinator.New(context.Background(), cfg, f.sealing)
	if err != nil {
		t.Fatal(err)
	}
	f.api = serveAPI(t, c2)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done = make(chan error, 1)
	go func() { done <- c2.Run(ctx2) }()
	if _, err := f.submitFor(t, tc, "c", vals); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	g := c2.Global()
	v1, err := coordinator.LoadModel(context.Background(), f.store, "keystroke-ae", 1)
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Params[1] - v1.Params[1]; g.Participants != 3 || math.Abs(d-0.25) > 1e-6 {
		t.Fatalf("released %d participants and a step of %v, want 3 and 0.25", g.Participants, d)
	}
}

// serveAPI serves c's API on loopback and returns a client of it.
func serveAPI(t *testing.T, c *coordinator.Coordinator) vigilv1.CoordinatorClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	c.Register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(vigilv1.MaxMessageBytes), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return vigilv1.NewCoordinatorClient(conn)
}
