package client

import (
	"context"
	"hash/fnv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// SubmitUpdate hands req to the first of frontends that answers, starting at the one chosen
// by req's device ID (FrontendIndex) and moving to the next when one cannot be reached
// (Unavailable, DeadlineExceeded, or a broken connection, which gRPC reports as Unavailable),
// and to coordinator last. Any other answer is final: an update refused by one frontend would
// be refused by all of them, and AlreadyExists means an earlier attempt got it into the
// round, whichever process took it, since the coordinator tier accepts a device's update
// once.
func SubmitUpdate(ctx context.Context, coordinator vigilv1.CoordinatorClient, frontends []vigilv1.CoordinatorClient, req *vigilv1.SubmitUpdateRequest) (*vigilv1.SubmitUpdateResponse, error) {
	n := len(frontends)
	first := FrontendIndex(req.GetDeviceId(), n)
	for i := range n {
		resp, err := frontends[(first+i)%n].SubmitUpdate(ctx, req)
		if !tryElsewhere(ctx, err) {
			return resp, err
		}
	}
	return coordinator.SubmitUpdate(ctx, req)
}

// FrontendIndex is the frontend, of n, that a device starts at: fixed per device, so that a
// device keeps to one frontend while it is up, and spread evenly over a fleet (FNV-1a of the
// device ID).
func FrontendIndex(deviceID string, n int) int {
	if n <= 0 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(deviceID))
	return int(h.Sum32() % uint32(n))
}

// tryElsewhere says whether err is a frontend that could not be reached, rather than its
// answer. A deadline or cancellation of the caller's own ctx ends the attempts.
func tryElsewhere(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}
