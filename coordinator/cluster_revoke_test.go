package coordinator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestAttackRevokedDeviceAtRemoteFrontend: a device sampled for the open round is revoked at
// the leader (`vigil pki revoke`), then hands its update to a frontend on another machine,
// whose certificate check reads that machine's own revocation list, which the revocation did
// not reach. The leader only pruned revoked devices when a round started, so the frontend
// stored the update and the round counted it (found by review). The leader now takes a
// revoked device out of the tier's registry within a step, and every frontend checks each
// update against that registry.
func TestAttackRevokedDeviceAtRemoteFrontend(t *testing.T) {
	tier := embeddedTier(t, "keystroke-ae")
	devices := []string{"a", "b", "c", "mallory"}
	revs := &revocationList{ids: map[pki.Identity]time.Time{}}
	cfg := coordinator.Config{Rounds: 1, DevicesPerRound: len(devices), MinUpdates: 2, MinEnrolled: len(devices),
		RoundTimeout: time.Minute, Cluster: tier, StateDir: t.TempDir(), Revocations: revs}
	f, front, _ := leadWithFrontend(t, cfg, devices)
	tasks := map[string]*vigilv1.Task{}
	for _, d := range devices {
		tasks[d] = waitTask(t, f.api, d)
	}
	if err := revs.RevokeIdentity(pki.Device("mallory"), time.Now()); err != nil {
		t.Fatal(err)
	}
	submit := func(d string) error {
		_, err := front.SubmitUpdate(context.Background(), f.sealedUpdate(t, tasks[d], d, vector(0.1)))
		return err
	}
	// The revocation takes effect at the leader's next step; an update sent before it would
	// rightly be stored, so the test waits for the tier to lose the device's record first.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := tier.Device(context.Background(), "mallory"); errors.Is(err, cluster.ErrNoDevice) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked device is still in the tier's registry 10 s later")
		}
	}
	err := submit("mallory")
	if status.Code(err) != codes.NotFound || vigilv1.Reason(err) != coordinator.ReasonUnknownDevice {
		t.Fatalf("the revoked device's update at the frontend: %v, want NotFound %s", err, coordinator.ReasonUnknownDevice)
	}
	if err := submit("a"); err != nil {
		t.Fatalf("a device in good standing at the same frontend: %v", err)
	}
}
