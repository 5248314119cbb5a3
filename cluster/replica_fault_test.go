package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestReplicaRestoreAfterServerRestart kills the server leading the replica's stream halfway
// through a leader's commits, goes on committing on the two left, and brings the killed server
// back on its old store. Standbys taking over at once, and again, must each restore every
// commit: a restore reads in bulk from a consumer, which may live on the replica still catching
// up, and asks the stream's leader for what that consumer does not deliver.
func TestReplicaRestoreAfterServerRestart(t *testing.T) {
	c, nc := threeServers(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tier, err := Open(ctx, nc, Config{Model: "keystroke-ae", Replicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	leader := newMachine(t)
	leader.replace(t, "state/coordinator.state", []byte("round 1"))
	lr := leader.replica(t, tier)
	if _, err := lr.TakeOver(ctx); err != nil {
		t.Fatal(err)
	}
	commit := func(i int) {
		t.Helper()
		leader.append(t, "state/registry.log", []byte(fmt.Sprintf("device %d\n", i)))
		leader.replace(t, "state/coordinator.state", []byte(fmt.Sprintf("after device %d", i)))
		if err := lr.Sync(ctx); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	for i := range 20 {
		commit(i)
	}
	killed := c.Index(lr.stream.CachedInfo().Cluster.Leader)
	if killed < 0 {
		t.Fatalf("no leader among the nodes: %+v", lr.stream.CachedInfo().Cluster)
	}
	if err := c.Kill(killed); err != nil {
		t.Fatal(err)
	}
	for i := 20; i < 40; i++ {
		commit(i)
	}
	if err := c.Restart(killed); err != nil {
		t.Fatal(err)
	}
	want := leader.files(t)
	for i := range 5 {
		standby := newMachine(t)
		if restored, err := standby.replica(t, tier).TakeOver(ctx); err != nil || !restored {
			t.Fatalf("standby %d: restored %v, %v", i+1, restored, err)
		}
		sameFiles(t, standby.files(t), want)
	}
}
