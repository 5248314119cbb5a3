package client

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// refusingCoordinator enrols the device and then answers every GetTask with err.
type refusingCoordinator struct {
	vigilv1.CoordinatorClient
	err   error
	polls atomic.Int32
}

func (r *refusingCoordinator) Enroll(context.Context, *vigilv1.EnrollRequest, ...grpc.CallOption) (*vigilv1.EnrollResponse, error) {
	return &vigilv1.EnrollResponse{Model: &vigilv1.ModelSpec{Layers: []uint32{2, 1, 2}, Activation: "tanh", NumParams: 7}, GlobalVersion: 1}, nil
}

func (r *refusingCoordinator) GetTask(context.Context, *vigilv1.GetTaskRequest, ...grpc.CallOption) (*vigilv1.GetTaskResponse, error) {
	r.polls.Add(1)
	return nil, r.err
}

// TestRunStopsWhenRefused is issue 18's fifth bullet: clients retried every 5 s forever,
// even after REVOKED. Errors that retrying cannot change stop Run with ErrRefused; others are
// retried.
func TestRunStopsWhenRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		final bool
	}{
		{"revoked", vigilv1.Error(codes.Unauthenticated, pki.ReasonRevoked, "device d1 was revoked", 0), true},
		{"wrong role", vigilv1.Error(codes.PermissionDenied, pki.ReasonWrongRole, "this server does not serve trustees", 0), true},
		{"unknown device enrols again", vigilv1.Error(codes.NotFound, "UNKNOWN_DEVICE", "device d1 is not enrolled", 0), false},
		{"unavailable", vigilv1.Error(codes.Unavailable, "NOT_DURABLE", "try again", 0), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			coord := &refusingCoordinator{err: tc.err}
			a, err := New(Config{DeviceID: "d1", Coordinator: coord, Data: Rows{{0.1, 0.2}}, Sealer: InsecurePlaintext{}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			err = a.Run(ctx)
			if got := errors.Is(err, ErrRefused); got != tc.final {
				t.Fatalf("Run = %v; ErrRefused %v, want %v", err, got, tc.final)
			}
			if tc.final && coord.polls.Load() != 1 {
				t.Errorf("%d polls before stopping, want 1", coord.polls.Load())
			}
			if !tc.final && coord.polls.Load() < 2 {
				t.Errorf("%d polls of a retryable error, want several", coord.polls.Load())
			}
		})
	}
}

func TestShedding(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("client: round 3: submit: %w", vigilv1.Error(codes.Unavailable, pki.ReasonServerBusy, "the server has 64 uploads open", 0)), true},
		{vigilv1.Error(codes.Unavailable, pki.ReasonTooManyCalls, "one upload at a time", 0), true},
		{vigilv1.Error(codes.Unavailable, "NOT_DURABLE", "try again", 0), false},
		{errors.New("connection refused"), false},
	} {
		if got := shedding(tc.err); got != tc.want {
			t.Errorf("shedding(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
