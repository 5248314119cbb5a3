package coordinator_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/crypto/sig"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/enrolment"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// TestAttackExpiringRecordFailsTheRound: a device enrols with a record about to expire (an
// honest one a year old, or a compromised one on purpose) and keeps taking part. The
// coordinator checked records only at enrolment and took its update; the trustees, checking
// every record when they open the sum after the deadline, refused the whole round, which had
// been charged (found by review). An update whose record expires within MinRecordValidity is
// now refused, saying why, and the round completes with the others.
func TestAttackExpiringRecordFailsTheRound(t *testing.T) {
	f := startEncrypted(t, coordinator.Config{Rounds: 1, DevicesPerRound: 3, MinUpdates: 2, RoundTimeout: 2 * time.Second,
		Privacy: coordinator.Privacy{ClipNorm: 1, NoiseMultiplier: 1, Budget: dp.Budget{Epsilon: 50, Delta: 1e-5},
			LedgerPath: filepath.Join(t.TempDir(), "model.ledger")}}, true)
	f.enroll(t, "a")
	f.enroll(t, "b")
	key, err := sig.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rec, err := f.keys.SignDeviceRecord(release.NewDeviceRecord("mallory", "eu", key.Public(), now.Add(-time.Minute), now.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	proof, err := enrolment.ProveRecord(key, "mallory", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := f.api.Enroll(ctx, &vigilv1.EnrollRequest{DeviceId: "mallory", Region: "eu", DeviceRecord: rec, RecordProof: proof}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "mallory"}); err != nil {
		t.Fatal(err)
	}
	f.devices["mallory"] = key
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go f.coord.Run(runCtx)
	for _, d := range []string{"a", "b"} {
		if _, err := f.submitEncrypted(t, d, vector(0.5)); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	_, err = f.submitEncrypted(t, "mallory", vector(0.5))
	if status.Code(err) != codes.FailedPrecondition || vigilv1.Reason(err) != coordinator.ReasonBadRecord {
		t.Fatalf("the update of a record expiring in an hour: %v, want FailedPrecondition %s", err, coordinator.ReasonBadRecord)
	}
	for ev := range f.events {
		switch ev.Kind {
		case coordinator.RoundFailed:
			t.Fatalf("round %d failed: %v", ev.Round, ev.Err)
		case coordinator.RoundCompleted:
			if ev.Accepted != 2 {
				t.Fatalf("round %d completed with %d updates, want a's and b's", ev.Round, ev.Accepted)
			}
			return
		}
	}
}
