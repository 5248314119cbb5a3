package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/models/keystroke"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// resumeLeader starts a leader on cfg's state, as a restarted or standby leader does, and
// returns the round's end: the event that completed or failed it.
func resumeLeader(t *testing.T, f *encrypted, cfg coordinator.Config) coordinator.Event {
	t.Helper()
	cfg.Store, cfg.Spec, cfg.FeatureSet, cfg.Root = f.store, spec, keystroke.TimingFeatureSet, f.root
	cfg.Privacy.ClipNorm, cfg.Privacy.InsecureNoDP = 1, true
	events := make(chan coordinator.Event, 100)
	cfg.Events = func(e coordinator.Event) { events <- e }
	leader, err := coordinator.New(context.Background(), cfg, f.sealing)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- leader.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })
	timeout := time.After(90 * time.Second)
	for {
		select {
		case e := <-events:
			if e.Kind == coordinator.RoundFailed || e.Kind == coordinator.RoundCompleted {
				return e
			}
		case err := <-done:
			t.Fatalf("the resumed leader stopped: %v", err)
		case <-timeout:
			t.Fatal("the resumed round neither completed nor failed in 90 s")
		}
	}
}

// leadWithFrontend runs a leader on cfg (its Cluster the tier), enrols devices and serves a
// frontend of the tier; stop stops the leader as a crash would leave its state.
func leadWithFrontend(t *testing.T, cfg coordinator.Config, devices []string) (f *encrypted, front vigilv1.CoordinatorClient, stop func()) {
	t.Helper()
	f = startEncrypted(t, cfg, true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.coord.Run(ctx) }()
	for _, d := range devices {
		f.enroll(t, d)
	}
	return f, serveFrontend(t, f, cfg.Cluster), func() { cancel(); <-done }
}

// TestClusterLeaderResumesASealedRound: the leader seals the round's stream and dies (or
// loses its lease while the seal is in flight) before its state says the round closed. The
// leader that resumes the round found the stream sealed, could not publish the plan to it,
// and aborted the round, deleting the stream with every acknowledged update (found by review).
// It now closes the round on what the stream holds.
func TestClusterLeaderResumesASealedRound(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	devices := []string{"a", "b", "c", "d"}
	cfg := coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: 2, MinEnrolled: len(devices),
		RoundTimeout: time.Minute, Cluster: tier, StateDir: t.TempDir()}
	f, front, stop := leadWithFrontend(t, cfg, devices)
	var round uint64
	for i, d := range devices[:3] {
		tk := waitTask(t, f.api, d)
		round = tk.GetRound()
		if _, err := front.SubmitUpdate(context.Background(), f.sealedUpdate(t, tk, d, vector(0.1*float64(i+1)))); err != nil {
			t.Fatal(err)
		}
	}
	stop()
	if _, err := tier.Close(context.Background(), round); err != nil { // the dead leader's seal
		t.Fatal(err)
	}
	e := resumeLeader(t, f, cfg)
	if e.Kind != coordinator.RoundCompleted || e.Accepted != 3 {
		t.Fatalf("the resumed round: %v with %d updates (%v), want completed with the 3 acknowledged", e.Kind, e.Accepted, e.Err)
	}
}

// TestClusterReenrolledDeviceKeepsItsUpdate: a device's update is stored, signed with its key;
// the device enrols again (a new key and record) and the leader restarts and replays the round.
// The leader built the update's contribution with the new record, under which its signature
// does not verify, so the trustees refused the round (found by review). The tier now keeps the
// record each update was checked against.
func TestClusterReenrolledDeviceKeepsItsUpdate(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	devices := []string{"a", "b", "c"}
	state := t.TempDir()
	cfg := coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: len(devices), MinEnrolled: len(devices),
		RoundTimeout: time.Minute, Cluster: tier, StateDir: state}
	f, front, stop := leadWithFrontend(t, cfg, devices)
	tasks := map[string]*vigilv1.Task{}
	for _, d := range devices {
		tasks[d] = waitTask(t, f.api, d)
	}
	for i, d := range devices[:2] {
		if _, err := front.SubmitUpdate(context.Background(), f.sealedUpdate(t, tasks[d], d, vector(0.1*float64(i+1)))); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if st, err := coordinator.ReadStatus(state); err == nil && st.GetOpenRound().GetSubmitted() == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader did not follow the two updates")
		}
	}
	time.Sleep(1100 * time.Millisecond) // records are issued to the second: a newer one
	f.enroll(t, "a")                    // a's new key and record, after its update was stored
	time.Sleep(500 * time.Millisecond)
	stop()
	go func() {
		if _, err := front.SubmitUpdate(context.Background(), f.sealedUpdate(t, tasks["c"], "c", vector(0.3))); err != nil {
			t.Error(err)
		}
	}()
	e := resumeLeader(t, f, cfg)
	if e.Kind != coordinator.RoundCompleted || e.Accepted != 3 {
		t.Fatalf("the replayed round: %v with %d updates (%v), want completed with 3", e.Kind, e.Accepted, e.Err)
	}
}
