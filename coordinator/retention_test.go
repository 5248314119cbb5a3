package coordinator_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/miniotest"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// TestKeepVersions runs five rounds with three devices and KeepVersions 2 on a filesystem
// store (the parameters of versions 1-4 are deleted between rounds, their metadata stays, and
// the devices go on training from the newest) and on a MinIO store, whose versions object lock
// keeps (nothing deleted, nothing fails).
func TestKeepVersions(t *testing.T) {
	const rounds = 5
	for _, tc := range []struct {
		name       string
		store      func(t *testing.T) store.Store
		wantPruned []uint64
	}{
		{"filesystem", func(t *testing.T) store.Store {
			st, err := store.NewFS(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return st
		}, []uint64{1, 2, 3, 4}},
		{"minio object lock", func(t *testing.T) store.Store { return miniotest.Shared(t, "vigil-models") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.store(t)
			api := runRounds(t, coordinator.Config{
				Store: st, KeepVersions: 2, Rounds: rounds, DevicesPerRound: 3, MinUpdates: 3, MinEnrolled: 3,
				RoundTimeout: 20 * time.Second, InitSeed: 1, Privacy: coordinator.Privacy{InsecureNoDP: true},
			}, 3)
			ctx := context.Background()
			metas, err := coordinator.ListVersions(ctx, st, "keystroke-ae")
			if err != nil || len(metas) != rounds+1 {
				t.Fatalf("ListVersions: %d versions, %v; want every version's metadata (%d)", len(metas), err, rounds+1)
			}
			pruned := map[uint64]bool{}
			for _, v := range tc.wantPruned {
				pruned[v] = true
			}
			for v := uint64(1); v <= rounds+1; v++ {
				_, err := coordinator.LoadModel(ctx, st, "keystroke-ae", v)
				if pruned[v] != errors.Is(err, store.ErrNotFound) {
					t.Errorf("v%d: LoadModel: %v, want pruned %v", v, err, pruned[v])
				}
				_, err = api.GetModel(ctx, &vigilv1.GetModelRequest{Version: v})
				if pruned[v] != (status.Code(err) == codes.NotFound) {
					t.Errorf("v%d: GetModel: %v, want pruned %v", v, err, pruned[v])
				}
			}
		})
	}
}

// runRounds serves a coordinator with cfg over gRPC to n simulated devices until its rounds
// are done, and returns its API.
func runRounds(t *testing.T, cfg coordinator.Config, n int) vigilv1.CoordinatorClient {
	t.Helper()
	cfg.Spec, cfg.FeatureSet = spec, keystroke.TimingFeatureSet
	c, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{})
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
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(vigilv1.MaxMessageBytes)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	api := vigilv1.NewCoordinatorClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for i := range n {
		a, err := client.New(client.Config{
			DeviceID: fmt.Sprintf("dev-%d", i), Coordinator: api, Data: client.Rows(typistRows(t, uint64(i+1), 20)),
			Sealer: client.InsecurePlaintext{}, FeatureSet: keystroke.TimingFeatureSet, Seed: uint64(i),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	if err := c.Run(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	return api
}
