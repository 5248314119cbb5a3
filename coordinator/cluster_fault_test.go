package coordinator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/natstest"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestClusterSurvivesKilledNATSServer runs a round on a tier replicated over three real
// nats-server processes and SIGKILLs the server leading the round's stream halfway: devices
// whose answer did not come back send again, to another frontend, and the round releases
// exactly the average of every acknowledged update, each counted once.
func TestClusterSurvivesKilledNATSServer(t *testing.T) {
	nodes := natstest.StartCluster(t, 3)
	nc, err := nats.Connect(strings.Join(nodes.URLs(), ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx := context.Background()
	tier, err := cluster.Open(ctx, nc, cluster.Config{Model: "keystroke-ae", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	devices := []string{"a", "b", "c", "d", "e", "f"}
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: len(devices), MinEnrolled: len(devices),
		RoundTimeout: 2 * time.Minute, Cluster: tier, StateDir: t.TempDir()}, true)
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	for _, d := range devices {
		f.enroll(t, d)
	}
	fronts := []vigilv1.CoordinatorClient{serveFrontend(t, f, tier), serveFrontend(t, f, tier)}

	// send is a device handing in its update until a frontend answers that the round holds it.
	send := func(i int, req *vigilv1.SubmitUpdateRequest) (attempts int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for ; time.Now().Before(deadline); attempts++ {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := fronts[(i+attempts)%len(fronts)].SubmitUpdate(cctx, req)
			cancel()
			if err == nil || coordinator.Reason(err) == coordinator.ReasonDuplicate {
				return attempts + 1
			}
			t.Logf("%s, attempt %d: %v", req.GetDeviceId(), attempts+1, err)
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("%s: no frontend took the update in 90 s", req.GetDeviceId())
		return 0
	}
	var scales []float64
	for i, d := range devices {
		if i == len(devices)/2 {
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			s, err := js.Stream(ctx, tier.StreamName(1))
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			leader := nodes.Index(info.Cluster.Leader)
			if leader < 0 {
				t.Fatalf("stream leader %q is none of the servers", info.Cluster.Leader)
			}
			if err := nodes.Kill(leader); err != nil {
				t.Fatal(err)
			}
			t.Logf("killed %s, the stream's leader, after %d updates", info.Cluster.Leader, i)
		}
		scale := 0.1 * float64(i+1)
		n := send(i, f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(scale)))
		t.Logf("%s: stored after %d attempt(s)", d, n)
		scales = append(scales, scale)
	}
	waitRun(t, done, "the round did not complete")
	checkAverage(t, f, f.coord.Global(), scales)
}
