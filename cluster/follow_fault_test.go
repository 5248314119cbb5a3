package cluster

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vigilauth/vigil/internal/natstest"
)

// TestFollowAfterServerRestart kills the server leading a round's stream after its first
// update, stores more on the two left and brings the killed server back on its old store.
// Every follower, started at once and repeatedly, must deliver every update, while the round
// is open (a consumer on the replica catching up stayed quiet for tens of seconds) and after
// it is closed (a follower that judged the end of the round by its consumer's own count once
// stopped after the first update here).
func TestFollowAfterServerRestart(t *testing.T) {
	c, nc := threeServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tier := roundOfOne(t, ctx, nc)
	leader := killStreamLeader(t, ctx, c, tier, 1)
	want := []string{"a"}
	for _, d := range []string{"b", "c", "d"} {
		acceptThroughElection(t, ctx, tier, 1, d)
		want = append(want, d)
	}
	if err := c.Restart(leader); err != nil {
		t.Fatal(err)
	}
	// Five times the stall a follower waits out, and well under a round's deadline: a
	// follower blocked creating its consumer took more than 6 s in CI.
	const within = 5 * followStall
	for i := range 5 {
		got := followedOpen(t, tier, 1, len(want), within)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("follow %d of the open round delivered %q within %v, want %q", i+1, got, within, want)
		}
	}
	if _, err := tier.Close(ctx, 1); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		got := followed(t, tier, 1)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("follow %d of the closed round delivered %q, want %q", i+1, got, want)
		}
	}
}

// threeServers starts a cluster of three nats-server processes and connects to it, moving to
// another server whenever the one it is on goes away.
func threeServers(t *testing.T) (*natstest.Cluster, *nats.Conn) {
	t.Helper()
	c := natstest.StartCluster(t, 3)
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return c, nc
}

// followedOpen follows an open round until n updates are delivered or the time is up, and
// returns the devices delivered.
func followedOpen(t *testing.T, tier *Tier, round uint64, n int, within time.Duration) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var got []string
	errEnough := errors.New("enough")
	err := tier.Follow(ctx, round, func(u Update) error {
		got = append(got, u.Device)
		if len(got) == n {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatal(err)
	}
	return got
}

// roundOfOne opens a tier replicated to three servers over nc, with round 1 planned and device
// a's update stored in it.
func roundOfOne(t *testing.T, ctx context.Context, nc *nats.Conn) *Tier {
	t.Helper()
	tier, err := Open(ctx, nc, Config{Model: "keystroke-ae", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := tier.PublishPlan(ctx, 1, []byte("plan")); err != nil {
		t.Fatal(err)
	}
	if _, err := tier.Accept(ctx, 1, "a", []byte("update of a"), Stamp{}); err != nil {
		t.Fatal(err)
	}
	return tier
}

// killStreamLeader SIGKILLs the node leading round's stream and returns its index.
func killStreamLeader(t *testing.T, ctx context.Context, c *natstest.Cluster, tier *Tier, round uint64) int {
	t.Helper()
	s, err := tier.js.Stream(ctx, tier.StreamName(round))
	if err != nil {
		t.Fatal(err)
	}
	leader := c.Index(s.CachedInfo().Cluster.Leader)
	if leader < 0 {
		t.Fatalf("no leader among the nodes: %+v", s.CachedInfo().Cluster)
	}
	if err := c.Kill(leader); err != nil {
		t.Fatal(err)
	}
	return leader
}

// acceptThroughElection stores device's update in round, trying again while the servers left
// elect a new leader for the stream, and returns how many attempts it took.
func acceptThroughElection(t *testing.T, ctx context.Context, tier *Tier, round uint64, device string) int {
	t.Helper()
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := tier.Accept(actx, round, device, []byte("update of "+device), Stamp{})
		acancel()
		if err == nil || errors.Is(err, ErrDuplicate) {
			return attempt
		}
		if ctx.Err() != nil {
			t.Fatalf("update of %s not stored after the stream leader was killed: %v", device, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
