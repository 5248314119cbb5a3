package client

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// fakeIntake answers SubmitUpdate with err and counts the calls; other calls are not made.
type fakeIntake struct {
	vigilv1.CoordinatorClient
	err   error
	calls int
}

func (f *fakeIntake) SubmitUpdate(context.Context, *vigilv1.SubmitUpdateRequest, ...grpc.CallOption) (*vigilv1.SubmitUpdateResponse, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &vigilv1.SubmitUpdateResponse{}, nil
}

func TestSubmitUpdateFrontends(t *testing.T) {
	var (
		down      = status.Error(codes.Unavailable, "connection refused")
		slow      = status.Error(codes.DeadlineExceeded, "deadline exceeded")
		duplicate = vigilv1.Error(codes.AlreadyExists, "DUPLICATE_UPDATE", "already in", 0)
		refused   = vigilv1.Error(codes.InvalidArgument, "BAD_UPDATE", "not an update", 0)
	)
	for _, tc := range []struct {
		name string
		// frontends answer in the order the device tries them, from its own first one.
		frontends   []error
		coordinator error
		want        codes.Code
		calls       []int // per frontend in the device's order, then the coordinator
	}{
		{"no frontends", nil, nil, codes.OK, []int{1}},
		{"first takes it", []error{nil, nil, nil}, nil, codes.OK, []int{1, 0, 0, 0}},
		{"first down", []error{down, nil, nil}, nil, codes.OK, []int{1, 1, 0, 0}},
		{"first two down or slow", []error{down, slow, nil}, nil, codes.OK, []int{1, 1, 1, 0}},
		{"all down: the coordinator", []error{down, slow}, nil, codes.OK, []int{1, 1, 1}},
		{"all down, the coordinator too", []error{down, down}, down, codes.Unavailable, []int{1, 1, 1}},
		{"duplicate at the first", []error{duplicate, nil}, nil, codes.AlreadyExists, []int{1, 0, 0}},
		{"duplicate after a failure", []error{down, duplicate}, nil, codes.AlreadyExists, []int{1, 1, 0}},
		{"duplicate at the coordinator", []error{down}, duplicate, codes.AlreadyExists, []int{1, 1}},
		{"refusal is final", []error{refused, nil}, nil, codes.InvalidArgument, []int{1, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const device = "dev-7"
			n := len(tc.frontends)
			first := FrontendIndex(device, n)
			fakes := make([]*fakeIntake, n)
			frontends := make([]vigilv1.CoordinatorClient, n)
			for k, err := range tc.frontends {
				fakes[k] = &fakeIntake{err: err}
				frontends[(first+k)%n] = fakes[k]
			}
			coord := &fakeIntake{err: tc.coordinator}
			_, err := SubmitUpdate(t.Context(), coord, frontends, &vigilv1.SubmitUpdateRequest{DeviceId: device})
			if status.Code(err) != tc.want {
				t.Fatalf("SubmitUpdate = %v, want %v", err, tc.want)
			}
			var calls []int
			for _, f := range fakes {
				calls = append(calls, f.calls)
			}
			calls = append(calls, coord.calls)
			if fmt.Sprint(calls) != fmt.Sprint(tc.calls) {
				t.Fatalf("calls %v, want %v", calls, tc.calls)
			}
		})
	}
}

// TestSubmitUpdateCallerDeadline: the caller's own deadline ends the attempts; it says
// nothing about the next frontend.
func TestSubmitUpdateCallerDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	a, b := &fakeIntake{err: status.Error(codes.Canceled, "canceled")}, &fakeIntake{}
	coord := &fakeIntake{}
	frontends := []vigilv1.CoordinatorClient{a, b}
	if _, err := SubmitUpdate(ctx, coord, frontends, &vigilv1.SubmitUpdateRequest{DeviceId: "dev-1"}); err == nil {
		t.Fatal("a cancelled submission succeeded")
	}
	if a.calls+b.calls != 1 || coord.calls != 0 {
		t.Fatalf("calls %d, %d and %d at the coordinator after the caller gave up; want one", a.calls, b.calls, coord.calls)
	}
}

// TestFrontendIndexSpreads: a fleet starts evenly over its frontends.
func TestFrontendIndexSpreads(t *testing.T) {
	const devices, n = 3000, 3
	count := make([]int, n)
	for i := range devices {
		count[FrontendIndex(fmt.Sprintf("load-%05d", i), n)]++
	}
	for k, c := range count {
		if c < devices/n*8/10 || c > devices/n*12/10 {
			t.Fatalf("frontend %d is first for %d of %d devices: %v", k, c, devices, count)
		}
	}
}
