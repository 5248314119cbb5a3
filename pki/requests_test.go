package pki

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// pad adds an unknown field of n bytes to msg, which every request type can carry.
func pad[M proto.Message](msg M, n int) M {
	b := protowire.AppendTag(nil, 1000, protowire.BytesType)
	msg.ProtoReflect().SetUnknown(protowire.AppendBytes(b, make([]byte, n)))
	return msg
}

// TestRequestLimitsPerMethod: over real TLS on loopback, a device with a valid certificate is
// refused a request larger than its method accepts, by name and limit, whatever the server's
// own receive limit; a request within the limit is served.
func TestRequestLimitsPerMethod(t *testing.T) {
	limits, err := NewRequestLimits(RequestLimitsConfig{MaxBytes: vigilv1.MaxRequestBytes})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{limits: limits})
	dev := e.dial(tlsCert(e.enroll("dev-1")))
	ctx := context.Background()
	small := vigilv1.MaxSmallRequestBytes
	for _, tc := range []struct {
		name   string
		method string
		call   func() error
		code   codes.Code
	}{
		{"GetTask within its limit", vigilv1.Coordinator_GetTask_FullMethodName, func() error {
			_, err := dev.GetTask(ctx, pad(&vigilv1.GetTaskRequest{DeviceId: "dev-1"}, small/2))
			return err
		}, codes.OK},
		{"GetTask 19 MiB", vigilv1.Coordinator_GetTask_FullMethodName, func() error {
			_, err := dev.GetTask(ctx, pad(&vigilv1.GetTaskRequest{DeviceId: "dev-1"}, 19<<20))
			return err
		}, codes.ResourceExhausted},
		{"GetTask one byte over", vigilv1.Coordinator_GetTask_FullMethodName, func() error {
			_, err := dev.GetTask(ctx, pad(&vigilv1.GetTaskRequest{}, small))
			return err
		}, codes.ResourceExhausted},
		{"Enroll 1 MiB", vigilv1.Coordinator_Enroll_FullMethodName, func() error {
			_, err := dev.Enroll(ctx, pad(&vigilv1.EnrollRequest{DeviceId: "dev-1"}, 1<<20))
			return err
		}, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if tc.code == codes.OK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantStatus(t, err, tc.code, ReasonRequestTooLarge)
			limit := strconv.Itoa(vigilv1.MaxRequestBytes(tc.method))
			if !strings.Contains(err.Error(), tc.method) || !strings.Contains(err.Error(), "at most "+limit+" bytes") {
				t.Errorf("the refusal %q does not name %s and its limit %s", err, tc.method, limit)
			}
		})
	}
}

// TestRequestLimitsCapOpenCalls: a device's calls beyond MaxInFlight, over however many
// connections, are refused TOO_MANY_CALLS before they are read; its count drops as calls end,
// and another device is not affected.
func TestRequestLimitsCapOpenCalls(t *testing.T) {
	limits, err := NewRequestLimits(RequestLimitsConfig{MaxBytes: vigilv1.MaxRequestBytes, MaxInFlight: 2})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{limits: limits})
	cert, other := tlsCert(e.enroll("dev-1")), e.enroll("dev-2")
	e.srv.hold = make(chan struct{})
	held := make(chan error, 2)
	for range 2 { // on two connections
		dev := e.dial(cert)
		go func() { held <- getTask(dev, "dev-1") }()
	}
	for deadline := time.Now().Add(10 * time.Second); limits.Open("device/dev-1") < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls open, want 2", limits.Open("device/dev-1"))
		}
	}
	err = getTask(e.dial(cert), "dev-1")
	wantStatus(t, err, codes.ResourceExhausted, ReasonTooManyCalls)
	otherDone := make(chan error, 1)
	go func() { otherDone <- getTask(e.dial(tlsCert(other)), "dev-2") }()
	close(e.srv.hold)
	for range 2 {
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
	if err := <-otherDone; err != nil {
		t.Fatalf("another device: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); limits.Open("device/dev-1") != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls still counted open after they ended", limits.Open("device/dev-1"))
		}
	}
	if err := getTask(e.dial(cert), "dev-1"); err != nil {
		t.Fatalf("after its calls ended: %v", err)
	}
}
