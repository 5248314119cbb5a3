package trustee

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestClientNeedsACommitQuorum: a client with
// fewer connections than a round needs commitments from (Quorum(n, t)) was accepted, since
// only t were required, and every round then failed with a reason naming nothing. Now it is
// refused, with the numbers and, given the ids, the trustees not given; and a round that too
// few can serve names the trustees it lacks.
func TestClientNeedsACommitQuorum(t *testing.T) {
	k := newTestKey(t, 5, 3) // Quorum(5, 3) = 4
	cluster := startCluster(t, k, t.TempDir())
	ids := []string{"privacy-office", "security", "audit", "legal", "board"}

	_, err := NewClient(ClientConfig{Key: k.key, Trustees: cluster.Clients[:3], IDs: ids[:3]})
	if err == nil || !strings.Contains(err.Error(), "needs commitments from 4") || !strings.Contains(err.Error(), "not given: legal, board") {
		t.Errorf("3 of 5 trustees with t = 3 = %v, want a refusal saying 4 must commit and naming legal and board", err)
	}
	if _, err := NewClient(ClientConfig{Key: k.key, Trustees: cluster.Clients[:3]}); err == nil || !strings.Contains(err.Error(), "needs commitments from 4") {
		t.Errorf("3 of 5 trustees without ids = %v, want a refusal saying 4 must commit", err)
	}
	for name, bad := range map[string][]string{
		"fewer ids":  ids[:3],
		"unknown id": {"privacy-office", "security", "audit", "bob"},
		"id twice":   {"privacy-office", "security", "audit", "audit"},
	} {
		if _, err := NewClient(ClientConfig{Key: k.key, Trustees: cluster.Clients[:4], IDs: bad}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// Four of five given, and legal down: the round cannot be served, and the reason names
	// legal (by its id, though it did not answer) and board, which has no connection.
	cl, err := NewClient(ClientConfig{Key: k.key, Trustees: cluster.Clients[:4], IDs: ids[:4], ProbeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Stop(3)
	health, err := cl.Ready(context.Background(), 1, testMinContributors)
	if !errors.Is(err, ErrNotEnoughTrustees) || !strings.Contains(err.Error(), "trustee legal: ") || !strings.Contains(err.Error(), "no connection to board") {
		t.Errorf("Ready with legal down and board not given = %v, want ErrNotEnoughTrustees naming legal and board", err)
	}
	if len(health) != 4 || health[3].ID != "legal" || health[3].Reachable || health[3].Problem == "" {
		t.Errorf("health %+v, want legal unreachable, named", health)
	}
}

// TestTrusteeNamedByConfiguredID: a trustee that
// did not answer was named by its position ("#2") rather than by the id the coordinator was
// given for it, so its metrics, log lines and status changed name when it came back. Given
// the ids, it keeps its id; and an address that answers as another trustee (two addresses
// swapped) cannot serve, under the id it was given for.
func TestTrusteeNamedByConfiguredID(t *testing.T) {
	k := newTestKey(t, 3, 2)
	cluster := startCluster(t, k, t.TempDir())
	swapped := []vigilv1.TrusteeClient{cluster.Clients[0], cluster.Clients[2], cluster.Clients[1]}
	cl, err := NewClient(ClientConfig{Key: k.key, Trustees: swapped, IDs: []string{"privacy-office", "security", "audit"}, ProbeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	health, err := cl.Ready(context.Background(), 1, testMinContributors)
	if !errors.Is(err, ErrNotEnoughTrustees) {
		t.Errorf("Ready with two addresses swapped = %v, want ErrNotEnoughTrustees", err)
	}
	for i, want := range []string{"privacy-office", "security", "audit"} {
		if health[i].ID != want {
			t.Errorf("health %d is %q, want %q", i, health[i].ID, want)
		}
	}
	if !strings.Contains(health[1].Problem, `answers as trustee "audit"`) || health[0].Problem != "" {
		t.Errorf("health %+v, want security answering as audit", health)
	}

	cl, err = NewClient(ClientConfig{Key: k.key, Trustees: cluster.Clients, IDs: []string{"privacy-office", "security", "audit"}, ProbeTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cluster.Stop(2)
	health, err = cl.Ready(context.Background(), 1, testMinContributors)
	if !errors.Is(err, ErrNotEnoughTrustees) || !strings.Contains(err.Error(), "trustee audit: ") {
		t.Errorf("Ready with audit down = %v, want ErrNotEnoughTrustees naming audit", err)
	}
	if health[2].ID != "audit" || health[2].Reachable {
		t.Errorf("health %+v, want audit unreachable, named audit", health[2])
	}
}
