package coordinator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/aggregation"
	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/he"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/trustee"
)

// received counts the contributions each trustee received, by method (CommitSum from the
// leader, CommitPart from frontends).
type received struct {
	mu sync.Mutex
	n  map[string]int // "trustee method"
}

func (r *received) options(id string) ([]grpc.ServerOption, error) {
	return []grpc.ServerOption{grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		return h(srv, countingStream{ServerStream: ss, count: func() {
			r.mu.Lock()
			r.n[id+" "+info.FullMethod]++
			r.mu.Unlock()
		}})
	})}, nil
}

func (r *received) get(id, method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[id+" /vigil.v1.Trustee/"+method]
}

type countingStream struct {
	grpc.ServerStream
	count func()
}

func (s countingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if p, ok := m.(*vigilv1.SumPart); ok && err == nil && p.GetContribution() != nil {
		s.count()
	}
	return err
}

// TestClusterFrontendsHandTheTrusteesTheirUpdates: two frontends with the trustees take five
// of a round's six updates, the leader one. Each frontend has the trustees verify its updates
// itself, two while the round collects (HandOverEvery) and the rest once the round is sealed,
// each update sent once; it hands the leader its partial sum, and the leader streams each
// trustee only its own one; the released average is exactly the devices'. A frontend that
// stops answering before the seal costs only that: the leader reads its updates from the tier
// and streams them too; so does an update a frontend stored but did not keep, the rest of its
// part being used.
func TestClusterFrontendsHandTheTrusteesTheirUpdates(t *testing.T) {
	for _, tc := range []struct {
		name string
		// lost stops the second frontend's answers before the round closes; unkept stores the
		// last device's update in the tier under the second frontend's name, as a store the
		// frontend could not confirm and so did not keep.
		lost, unkept bool
	}{
		{name: "both frontends answer"},
		{name: "a frontend stops answering, one of its devices removed", lost: true},
		{name: "a frontend did not keep an update it stored", unkept: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devices := []string{"a", "b", "c", "d", "e", "f"}
			ctx := context.Background()
			got := &received{n: map[string]int{}}
			tier := embeddedTier(t, "keystroke-ae")
			f := startEncryptedWith(t, coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: len(devices), MinEnrolled: len(devices),
				RoundTimeout: time.Minute, Cluster: tier, StateDir: t.TempDir()}, true, func(lc *trustee.LocalConfig) { lc.ServerOptions = got.options })
			done := make(chan error, 1)
			go func() { done <- f.coord.Run(ctx) }()
			for _, d := range devices {
				f.enroll(t, d)
			}
			fronts, stops := partFrontends(t, ctx, f, tier, "fe-one", "fe-two")
			var scales []float64
			for i, d := range devices {
				if i == 4 {
					// Each frontend took two: the trustees have them before the round closes.
					waitHanded(t, got, f.key, 4)
				}
				to := f.api
				if i < 5 {
					to = fronts[i%2]
				}
				scale := 0.1 * float64(i+1)
				req := f.sealedUpdate(t, waitTask(t, f.api, d), d, vector(scale))
				if i == 5 && tc.unkept {
					raw, err := proto.Marshal(req)
					if err != nil {
						t.Fatal(err)
					}
					sum, err := aggregation.NewEncryptedAccumulator(f.key, spec.NumParams())
					if err != nil {
						t.Fatal(err)
					}
					fp, err := sum.Fingerprint(aggregation.Origin{Round: req.GetRound(), Device: d, Nonce: req.GetNonce()}, req.GetUpdate())
					if err != nil {
						t.Fatal(err)
					}
					if _, err := tier.Accept(ctx, req.GetRound(), d, raw, cluster.Stamp{Acceptor: "fe-two", Fingerprint: fp[:]}); err != nil {
						t.Fatal(err)
					}
				} else if _, err := to.SubmitUpdate(ctx, req); err != nil {
					t.Fatalf("%s: %v", d, err)
				}
				scales = append(scales, scale)
			}
			if tc.lost {
				stops[1]()
				// And one of its devices removed meanwhile: the round still counts what it
				// sent, read back with the record its signature was checked against.
				if err := f.coord.RemoveDevice(ctx, "b", "lost device"); err != nil {
					t.Fatal(err)
				}
			}
			waitRun(t, done, "the round did not complete")
			checkAverage(t, f, f.coord.Global(), scales)
			// fe-one took a, c, e; fe-two b, d; the leader f. The frontend that stopped
			// answering had handed over b and d while the round collected, but the leader
			// could not learn its part.
			leader, parts := 1, 5
			if tc.lost {
				leader = 3
			}
			for _, k := range f.key.Trustees {
				if n := got.get(k.ID, "CommitSum"); n != leader {
					t.Errorf("trustee %s: the leader streamed %d updates, want %d", k.ID, n, leader)
				}
				if n := got.get(k.ID, "CommitPart"); n != parts {
					t.Errorf("trustee %s: frontends streamed %d updates, want %d", k.ID, n, parts)
				}
			}
		})
	}
}

// waitServing waits until each frontend answers part requests.
func waitServing(t *testing.T, tier *cluster.Tier, ids ...string) {
	t.Helper()
	for _, id := range ids {
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := tier.AskPart(ctx, id, nil)
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("frontend %s does not answer: %v", id, err)
			}
		}
	}
}

// TestClusterPlaintextRoundThroughFrontend: a leader with a tier and plaintext sealing (no key
// epoch, no trustees) and a frontend without a key: the frontend keeps no part, so the leader
// reads its updates as they arrive and releases the round. (With the frontend's name stored on
// its updates the leader once waited for parts that never come and failed every round.)
func TestClusterPlaintextRoundThroughFrontend(t *testing.T) {
	ctx := context.Background()
	tier := embeddedTier(t, "keystroke-ae")
	f := startWith(t, coordinator.Config{Rounds: 1, DevicesPerRound: 2, MinUpdates: 2, RoundTimeout: time.Minute, Cluster: tier, StateDir: t.TempDir()},
		coordinator.Insecure{})
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	enrol(t, f.api, "a", "b")
	fe, err := coordinator.NewFrontend(coordinator.FrontendConfig{Tier: tier})
	if err != nil {
		t.Fatal(err)
	}
	front := vigilv1.NewCoordinatorClient(serveLoopback(t, fe))
	for i, d := range []string{"a", "b"} {
		if _, err := front.SubmitUpdate(ctx, update(waitTask(t, f.api, d), d, float64(i+1))); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	waitRun(t, done, "the round did not complete")
	if g := f.coord.Global(); g.Participants != 2 {
		t.Fatalf("released with %d participants, want 2", g.Participants)
	}
}

// partFrontends serves a frontend keeping parts, with f's trustees, on tier for each of ids,
// waits until each answers part requests, and returns clients of them and the functions that
// stop their answers.
// waitHanded waits until every trustee has been streamed n updates by frontends.
func waitHanded(t *testing.T, got *received, key *he.KeyEpoch, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, k := range key.Trustees {
		for got.get(k.ID, "CommitPart") < n {
			if time.Now().After(deadline) {
				t.Fatalf("trustee %s was handed %d updates while the round collected, want %d", k.ID, got.get(k.ID, "CommitPart"), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func partFrontends(t *testing.T, ctx context.Context, f *encrypted, tier *cluster.Tier, ids ...string) ([]vigilv1.CoordinatorClient, []context.CancelFunc) {
	t.Helper()
	tc, err := trustee.NewClient(trustee.ClientConfig{Key: f.key, Trustees: f.cluster.Clients})
	if err != nil {
		t.Fatal(err)
	}
	var fronts []vigilv1.CoordinatorClient
	var stops []context.CancelFunc
	for _, id := range ids {
		fe, err := coordinator.NewFrontend(coordinator.FrontendConfig{Tier: tier, Key: f.key, VerifySignatures: true, Trustees: tc, HandOverEvery: 2, Dir: t.TempDir(), ID: id})
		if err != nil {
			t.Fatal(err)
		}
		rctx, stop := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- fe.Run(rctx) }()
		t.Cleanup(func() { stop(); <-served; fe.Close() })
		stops = append(stops, stop)
		fronts = append(fronts, vigilv1.NewCoordinatorClient(serveLoopback(t, fe)))
	}
	// Run has subscribed once a request finds it: wait for that, as the leader would not.
	waitServing(t, tier, ids...)
	return fronts, stops
}
