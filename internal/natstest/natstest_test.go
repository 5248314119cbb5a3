package natstest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterSurvivesKilledNode is the fault the coordinator tier is built to survive: one of
// three servers is killed while clients publish to a stream replicated on all three; the
// clients carry on through the others, and once the server is back its replica catches up.
// Publishes carry a message ID and are retried until acknowledged, as the tier's writes are, so
// every message must be stored exactly once.
func TestClusterSurvivesKilledNode(t *testing.T) {
	follower := func(leader int) int { return (leader + 1) % 3 }
	// The stream's leader: its replicas must elect another before publishes are acknowledged
	// again.
	leader := func(leader int) int { return leader }
	tests := []struct {
		name   string
		victim func(leader int) int
		down   func(c *Cluster, i int) error
	}{
		{"follower killed", follower, (*Cluster).Kill},
		{"stream leader killed", leader, (*Cluster).Kill},
		{"stream leader stopped", leader, (*Cluster).Stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			c := StartCluster(t, 3)
			t.Logf("cluster of 3 ready in %s", time.Since(start).Round(time.Millisecond))
			nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FAULT", Subjects: []string{"fault.>"}, Replicas: 3})
			if err != nil {
				t.Fatal(err)
			}
			const n = 100
			publish(ctx, t, js, 0, n)

			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			leader := c.Index(info.Cluster.Leader)
			if leader < 0 {
				t.Fatalf("stream leader %q is not a node", info.Cluster.Leader)
			}
			victim := tt.victim(leader)
			if err := tt.down(c, victim); err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			publish(ctx, t, js, n, 2*n)
			t.Logf("%s down (stream leader %s): %d more published in %s", c.Name(victim), c.Name(leader), n, time.Since(start).Round(time.Millisecond))
			if victim == leader {
				info, err := s.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if info.Cluster.Leader == "" || info.Cluster.Leader == c.Name(victim) {
					t.Errorf("stream leader after killing %s: %q", c.Name(victim), info.Cluster.Leader)
				}
			}

			if err := c.Restart(victim); err != nil {
				t.Fatal(err)
			}
			start = time.Now()
			waitCaughtUp(ctx, t, s, c.Name(victim))
			t.Logf("%s restarted and caught up in %s", c.Name(victim), time.Since(start).Round(time.Millisecond))
			checkExactlyOnce(ctx, t, s, 2*n)
		})
	}
}

// publish publishes messages from to to-1, each retried with its message ID until acknowledged.
func publish(ctx context.Context, t *testing.T, js jetstream.JetStream, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		id := fmt.Sprintf("m-%d", i)
		for {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(pctx, "fault.m", []byte(id), jetstream.WithMsgID(id))
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %s: %v", id, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// waitCaughtUp waits until node is a current replica (or the leader) of the stream, with every
// other replica current too.
func waitCaughtUp(ctx context.Context, t *testing.T, s jetstream.Stream, node string) {
	t.Helper()
	var last error
	for {
		info, err := s.Info(ctx)
		if err == nil {
			last = caughtUp(info, node)
			if last == nil {
				return
			}
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s did not catch up: %v", node, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func caughtUp(info *jetstream.StreamInfo, node string) error {
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return errors.New("no stream leader")
	}
	if len(info.Cluster.Replicas) != 2 {
		return fmt.Errorf("%d replicas besides the leader, want 2", len(info.Cluster.Replicas))
	}
	seen := info.Cluster.Leader == node
	for _, r := range info.Cluster.Replicas {
		if !r.Current || r.Offline || r.Lag != 0 {
			return fmt.Errorf("replica %s: current %v, offline %v, lag %d", r.Name, r.Current, r.Offline, r.Lag)
		}
		seen = seen || r.Name == node
	}
	if !seen {
		return fmt.Errorf("%s is not in the stream's group", node)
	}
	return nil
}

// checkExactlyOnce reads the stream back: messages m-0 to m-(n-1), each once.
func checkExactlyOnce(ctx context.Context, t *testing.T, s jetstream.Stream, n int) {
	t.Helper()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != uint64(n) || info.State.FirstSeq != 1 || info.State.LastSeq != uint64(n) {
		t.Fatalf("stream holds %d messages, sequences %d to %d; want %d, 1 to %d", info.State.Msgs, info.State.FirstSeq, info.State.LastSeq, n, n)
	}
	seen := make(map[string]int, n)
	for seq := uint64(1); seq <= uint64(n); seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		seen[string(m.Data)]++
	}
	for i := range n {
		if id := fmt.Sprintf("m-%d", i); seen[id] != 1 {
			t.Errorf("%s stored %d times", id, seen[id])
		}
	}
}

// TestStartClusterSkipsWithoutServer: outside CI, a machine without nats-server skips these
// tests rather than failing them.
func TestStartClusterSkipsWithoutServer(t *testing.T) {
	t.Setenv("VIGIL_NATS_SERVER", "")
	t.Setenv("CI", "")
	var inner *testing.T
	t.Run("unset", func(t *testing.T) {
		inner = t
		StartCluster(t, 3)
		t.Error("StartCluster returned without a server binary")
	})
	if !inner.Skipped() {
		t.Error("not skipped")
	}
}
