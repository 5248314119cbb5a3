package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

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

type fixture struct {
	coord  *coordinator.Coordinator
	conn   *grpc.ClientConn
	api    vigilv1.CoordinatorClient
	store  *store.FS
	events chan coordinator.Event
}

func start(t *testing.T, cfg coordinator.Config) *fixture {
	t.Helper()
	return startWith(t, cfg, coordinator.Insecure{})
}

func startWith(t *testing.T, cfg coordinator.Config, sealing coordinator.Sealing) *fixture {
	t.Helper()
	st, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan coordinator.Event, 1000)
	cfg.Store = st
	cfg.Spec = spec
	cfg.FeatureSet = keystroke.TimingFeatureSet
	cfg.Events = func(e coordinator.Event) { events <- e }
	if !cfg.Privacy.Enabled() {
		// Most tests check the protocol, not privacy: they say so explicitly.
		cfg.Privacy.InsecureNoDP = true
	}
	c, err := coordinator.New(context.Background(), cfg, sealing)
	if err != nil {
		t.Fatal(err)
	}
	conn := serveLoopback(t, c)
	return &fixture{coord: c, conn: conn, api: vigilv1.NewCoordinatorClient(conn), store: st, events: events}
}

// serveLoopback serves s over gRPC on loopback, as the coordinator serves, without TLS, and
// returns a connection to it; both stop when the test ends.
func serveLoopback(t *testing.T, s interface{ Register(*grpc.Server) }) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	s.Register(srv)
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(vigilv1.MaxMessageBytes), grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func meanLoss(t *testing.T, params []float64, rows [][]float64) float64 {
	s, err := models.NewScorer(spec, params)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, r := range rows {
		sum += s.Score(r)
	}
	return sum / float64(len(rows))
}

// TestRoundsOverGRPC runs devices and a coordinator over real gRPC on loopback and checks that
// every round produces a stored version and that the global model gets better on held-out data.
func TestRoundsOverGRPC(t *testing.T) {
	const devices, rounds = 5, 4
	f := start(t, coordinator.Config{Rounds: rounds, DevicesPerRound: devices, MinUpdates: 3, MinEnrolled: devices, RoundTimeout: 20 * time.Second, InitSeed: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var heldOut [][]float64
	var wg sync.WaitGroup
	for i := range devices {
		rows := typistRows(t, uint64(i+1), 40)
		heldOut = append(heldOut, rows[30:]...)
		a, err := client.New(client.Config{
			DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: f.api, Data: client.Rows(rows[:30]),
			Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	before := meanLoss(t, f.coord.Global().Params, heldOut)
	if err := f.coord.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()

	metas, err := coordinator.ListVersions(context.Background(), f.store, "keystroke-ae")
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != rounds+1 {
		t.Fatalf("store holds %d versions, want %d", len(metas), rounds+1)
	}
	for i, m := range metas[1:] {
		// The round's participant count is not published; that the round ran without
		// differential privacy is.
		if m.Version != uint64(i+2) || m.Parent != uint64(i+1) || m.Privacy == nil || m.Privacy.DifferentialPrivacy {
			t.Errorf("version %d: %+v", i+2, m)
		}
	}
	stored, err := coordinator.LoadModel(context.Background(), f.store, "keystroke-ae", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored.Meta, f.coord.Global().Meta) {
		t.Fatalf("the model in memory differs from the stored one:\n%+v\n%+v", f.coord.Global().Meta, stored.Meta)
	}
	after := meanLoss(t, f.coord.Global().Params, heldOut)
	if !(after < 0.7*before) {
		t.Fatalf("held-out loss %.4f -> %.4f: the global model did not improve", before, after)
	}
	t.Logf("held-out loss %.4f -> %.4f over %d rounds", before, after, rounds)
}

// TestBadUpdatesAreRejected sends malformed and misbound updates and checks that each gets a
// status naming the problem while the round keeps its accepted updates.
func TestBadUpdatesAreRejected(t *testing.T) {
	f := start(t, coordinator.Config{DevicesPerRound: 2, MinUpdates: 2, RoundTimeout: time.Minute, Rounds: 1})
	ctx := context.Background()
	enrol(t, f.api, "a", "b")
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(runCtx) }()
	task := func(d string) *vigilv1.Task {
		for {
			r, err := f.api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: d})
			if err != nil {
				t.Fatal(err)
			}
			if r.GetTask() != nil {
				return r.GetTask()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ta, tb := task("a"), task("b")
	n := spec.NumParams()
	good := func(tk *vigilv1.Task, d string) *vigilv1.SubmitUpdateRequest {
		vals := make([]float64, n)
		vals[0] = 1
		return &vigilv1.SubmitUpdateRequest{DeviceId: d, Round: tk.GetRound(), Nonce: tk.GetNonce(), BaseVersion: tk.GetBaseVersion(),
			Update: &vigilv1.Update{Encoding: vigilv1.UpdateEncoding_UPDATE_ENCODING_PLAINTEXT, Dimension: uint64(n), Values: vals}}
	}
	if _, err := f.api.SubmitUpdate(ctx, good(ta, "a")); err != nil {
		t.Fatal(err)
	}
	mod := func(m func(r *vigilv1.SubmitUpdateRequest)) *vigilv1.SubmitUpdateRequest {
		r := good(tb, "b")
		m(r)
		return r
	}
	for _, tc := range []struct {
		name   string
		req    *vigilv1.SubmitUpdateRequest
		code   codes.Code
		reason string
		msg    string
	}{
		{"wrong length", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Update.Values = r.Update.Values[:10] }), codes.InvalidArgument, coordinator.ReasonBadUpdate, "10 values"},
		{"wrong dimension", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Update.Dimension = 7 }), codes.InvalidArgument, coordinator.ReasonBadUpdate, "dimension 7"},
		{"NaN", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Update.Values[3] = math.NaN() }), codes.InvalidArgument, coordinator.ReasonBadUpdate, "value 3 is NaN"},
		{"Inf", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Update.Values[4] = math.Inf(1) }), codes.InvalidArgument, coordinator.ReasonBadUpdate, "value 4 is +Inf"},
		{"unknown round", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Round = 99 }), codes.FailedPrecondition, coordinator.ReasonUnknownRound, "round 99"},
		{"unknown device", mod(func(r *vigilv1.SubmitUpdateRequest) { r.DeviceId = "mallory" }), codes.NotFound, coordinator.ReasonUnknownDevice, "mallory"},
		{"bad device id", mod(func(r *vigilv1.SubmitUpdateRequest) { r.DeviceId = "../etc" }), codes.InvalidArgument, coordinator.ReasonInvalidArgument, "device_id"},
		{"replayed as a", mod(func(r *vigilv1.SubmitUpdateRequest) { r.DeviceId = "a"; r.Nonce = ta.GetNonce() }), codes.AlreadyExists, coordinator.ReasonDuplicate, "already submitted"},
		{"a's nonce", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Nonce = ta.GetNonce() }), codes.PermissionDenied, coordinator.ReasonBadNonce, "nonce"},
		{"short nonce", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Nonce = r.Nonce[:4] }), codes.InvalidArgument, coordinator.ReasonInvalidArgument, "nonce is 4 bytes"},
		{"stale base", mod(func(r *vigilv1.SubmitUpdateRequest) { r.BaseVersion = 0 }), codes.FailedPrecondition, coordinator.ReasonStaleBase, "version 0"},
		{"missing update", mod(func(r *vigilv1.SubmitUpdateRequest) { r.Update = nil }), codes.InvalidArgument, coordinator.ReasonBadUpdate, "missing"},
		{"oversized", mod(func(r *vigilv1.SubmitUpdateRequest) {
			// Past the message limit: gRPC refuses it before the handler decodes anything.
			n := vigilv1.MaxMessageBytes/8 + 1<<10
			r.Update.Values = make([]float64, n)
			r.Update.Dimension = uint64(n)
		}), codes.ResourceExhausted, "", "larger than max"},
		{"over the dimension limit", mod(func(r *vigilv1.SubmitUpdateRequest) {
			r.Update.Values = make([]float64, vigilv1.MaxParams+1)
			r.Update.Dimension = vigilv1.MaxParams + 1
		}), codes.InvalidArgument, coordinator.ReasonBadUpdate, "exceeds the size limits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.api.SubmitUpdate(ctx, tc.req)
			st := status.Convert(err)
			if st.Code() != tc.code || coordinator.Reason(err) != tc.reason || !strings.Contains(st.Message(), tc.msg) {
				t.Fatalf("got %v %q (reason %q), want %v with %q and reason %q", st.Code(), st.Message(), coordinator.Reason(err), tc.code, tc.msg, tc.reason)
			}
		})
	}
	if _, err := f.api.SubmitUpdate(ctx, good(tb, "b")); err != nil {
		t.Fatalf("b's good update after the bad ones: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Both accepted updates had 1 at index 0: their average moved parameter 0 by exactly 1.
	v1, _ := coordinator.LoadModel(ctx, f.store, "keystroke-ae", 1)
	v2 := f.coord.Global()
	if v2.Meta.Version != 2 || v2.Participants != 2 || math.Abs(v2.Params[0]-v1.Params[0]-1) > 1e-12 || v2.Params[1] != v1.Params[1] {
		t.Fatalf("round result: v%d with %d participants, Δp0 = %v", v2.Meta.Version, v2.Participants, v2.Params[0]-v1.Params[0])
	}
}

func TestRoundFailsBelowMinimum(t *testing.T) {
	f := start(t, coordinator.Config{DevicesPerRound: 2, MinUpdates: 2, RoundTimeout: 200 * time.Millisecond, Rounds: 1, TickInterval: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	enrol(t, f.api, "a", "b")
	go f.coord.Run(ctx)
	for {
		select {
		case e := <-f.events:
			if e.Kind == coordinator.RoundFailed {
				if e.Err == nil || !strings.Contains(e.Err.Error(), "only 0 of 2") {
					t.Fatalf("failure reason %v", e.Err)
				}
				if f.coord.Global().Meta.Version != 1 {
					t.Fatal("a failed round released a model")
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("round did not fail at its deadline")
		}
	}
}

func TestGetModelVersions(t *testing.T) {
	f := start(t, coordinator.Config{DevicesPerRound: 1, MinUpdates: 1})
	ctx := context.Background()
	r, err := f.api.GetModel(ctx, &vigilv1.GetModelRequest{})
	if err != nil || r.GetVersion() != 1 || len(r.GetParams()) != spec.NumParams() {
		t.Fatalf("GetModel(latest) = v%d, %d params, %v", r.GetVersion(), len(r.GetParams()), err)
	}
	_, err = f.api.GetModel(ctx, &vigilv1.GetModelRequest{Version: 9})
	if status.Code(err) != codes.NotFound || !errors.Is(err, err) || !strings.Contains(status.Convert(err).Message(), "newest is 1") {
		t.Fatalf("GetModel(9): %v", err)
	}
}
