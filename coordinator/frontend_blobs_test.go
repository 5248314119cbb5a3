package coordinator_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/store"
)

// TestFrontendOtherBlobsRefusedAtRound is a frontend given another object store than its
// round leader's, started before any leader recorded its store, so that the check at start
// had nothing to compare with. Updates it stored would be where the leader never reads them:
// when it meets the round it checks again and refuses them UNAVAILABLE, naming the store, and
// the device sends to a frontend with the leader's store.
func TestFrontendOtherBlobsRefusedAtRound(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := cluster.StartEmbedded(ctx, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	open := func(dir string) *cluster.Tier {
		t.Helper()
		blobs, err := store.NewFS(dir)
		if err != nil {
			t.Fatal(err)
		}
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
	}
	leaders := t.TempDir()
	leader, other, same := open(leaders), open(t.TempDir()), open(leaders)
	if err := other.CheckBlobs(ctx); err != nil {
		t.Fatalf("before any leader recorded its store: %v, want nothing to compare with", err)
	}

	devices := []string{"a", "b"}
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: len(devices), MinEnrolled: len(devices),
		RoundTimeout: time.Minute, Cluster: leader, StateDir: t.TempDir()}, true)
	wrong := serveFrontend(t, f, other)
	if err := leader.MarkBlobs(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	for _, d := range devices {
		f.enroll(t, d)
	}
	right := serveFrontend(t, f, same)
	var scales []float64
	for i, d := range devices {
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
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), scales)
}
