package coordinator

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/models"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/store"
)

// TestPendingEnrolmentsAreBounded fills the waiting enrolments to maxPendingEnrolments with
// callers that never come back: the next new device is refused (ResourceExhausted), a retry of
// a waiting one is still answered, and once pendingEnrolmentTTL has passed the stale ones are
// forgotten, so that new devices enrol again and none of the stale ones was ever registered.
func TestPendingEnrolmentsAreBounded(t *testing.T) {
	st, err := store.NewFS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c, err := New(context.Background(), Config{
		Store: st, Spec: models.Spec{Layers: []int{3, 2, 3}, Activation: models.Tanh},
		DevicesPerRound: 1, MinUpdates: 1, Now: clock, Privacy: Privacy{InsecureNoDP: true},
	}, Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	enroll := func(id string) error {
		_, err := c.Enroll(ctx, &vigilv1.EnrollRequest{DeviceId: id})
		return err
	}
	for i := range maxPendingEnrolments {
		if err := enroll(fmt.Sprintf("stranger-%05d", i)); err != nil {
			t.Fatalf("enrolment %d of %d: %v", i, maxPendingEnrolments, err)
		}
	}
	for _, tc := range []struct {
		name   string
		id     string
		code   codes.Code
		reason string
	}{
		{"a new device when full", "newcomer", codes.ResourceExhausted, ReasonTooManyEnrolments},
		{"a waiting device retrying", "stranger-00042", codes.OK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := enroll(tc.id)
			if status.Code(err) != tc.code || Reason(err) != tc.reason {
				t.Fatalf("Enroll(%s) = %v (reason %q), want %v %q", tc.id, err, Reason(err), tc.code, tc.reason)
			}
		})
	}
	mu.Lock()
	now = now.Add(pendingEnrolmentTTL)
	mu.Unlock()
	if err := enroll("newcomer"); err != nil {
		t.Fatalf("after the waiting enrolments expired: %v", err)
	}
	if _, err := c.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "stranger-00001"}); status.Code(err) != codes.NotFound {
		t.Fatalf("GetTask of an expired enrolment: %v, want NotFound", err)
	}
	if _, err := c.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "newcomer"}); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.devices) != 1 || len(c.enrolling) != 0 {
		t.Fatalf("%d registered and %d waiting, want only the newcomer registered", len(c.devices), len(c.enrolling))
	}
}
