package pki

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
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

// upload sends deviceID's SubmitUpdate of about size bytes.
func upload(c vigilv1.CoordinatorClient, deviceID string, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := c.SubmitUpdate(ctx, pad(&vigilv1.SubmitUpdateRequest{DeviceId: deviceID}, size))
	return err
}

// waitUploads waits until limits counts n uploads open.
func waitUploads(t *testing.T, limits *RequestLimits, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); limits.Uploads() != n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d uploads open, want %d", limits.Uploads(), n)
		}
	}
}

// TestAttackDeviceHoldsUploads: a compromised device may make the server hold one upload of
// the server's message limit at a time, over however many connections; the server as a whole
// holds at most MaxUploads, refusing more SERVER_BUSY, and every refusal comes before the
// upload is read. Both are Unavailable, so that an honest device tries another frontend, or
// again shortly.
func TestAttackDeviceHoldsUploads(t *testing.T) {
	limits, err := NewRequestLimits(RequestLimitsConfig{
		MaxBytes: vigilv1.MaxRequestBytes, Uploads: []string{vigilv1.Coordinator_SubmitUpdate_FullMethodName}, MaxUploads: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{limits: limits})
	mallory, honest, late := tlsCert(e.enroll("mallory")), tlsCert(e.enroll("honest")), tlsCert(e.enroll("late"))
	e.srv.holdUpload = make(chan struct{})
	held := make(chan error, 2)
	go func() { held <- upload(e.dial(mallory), "mallory", 1<<20) }()
	waitUploads(t, limits, 1)

	err = upload(e.dial(mallory), "mallory", 8<<20)
	wantStatus(t, err, codes.Unavailable, ReasonTooManyCalls)
	if err := getTask(e.dial(mallory), "mallory"); err != nil {
		t.Errorf("the device's other calls while it uploads: %v", err)
	}

	go func() { held <- upload(e.dial(honest), "honest", 1<<20) }()
	waitUploads(t, limits, 2)
	err = upload(e.dial(late), "late", 1<<20)
	wantStatus(t, err, codes.Unavailable, ReasonServerBusy)

	close(e.srv.holdUpload)
	for range 2 {
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
	waitUploads(t, limits, 0)
	if err := upload(e.dial(late), "late", 1<<20); err != nil {
		t.Fatalf("once the uploads ended: %v", err)
	}
}

// stallingConn writes the first after bytes, then blocks until release is closed: a caller
// that starts an upload and sends the rest slowly, or never.
type stallingConn struct {
	net.Conn
	after   int
	written int
	release chan struct{}
}

func (c *stallingConn) Write(b []byte) (int, error) {
	if c.written+len(b) > c.after {
		<-c.release
		return 0, net.ErrClosed
	}
	c.written += len(b)
	return c.Conn.Write(b)
}

// TestAttackSlowUploadGivesUpItsSlot: an upload that stops arriving is ended at UploadTimeout,
// and its caller's and the server's slots are free again.
func TestAttackSlowUploadGivesUpItsSlot(t *testing.T) {
	limits, err := NewRequestLimits(RequestLimitsConfig{
		MaxBytes: vigilv1.MaxRequestBytes, Uploads: []string{vigilv1.Coordinator_SubmitUpdate_FullMethodName},
		MaxUploads: 1, UploadTimeout: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, envOptions{limits: limits})
	mallory := tlsCert(e.enroll("mallory"))
	release := make(chan struct{})
	conn, err := grpc.NewClient(e.addr(),
		grpc.WithTransportCredentials(credentials.NewTLS(ClientTLS(mallory, e.ca.Pool(), Coordinator("")))),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return &stallingConn{Conn: c, after: 256 << 10, release: release}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Cleanup(func() { close(release) }) // before the connection closes: its writer is blocked
	go upload(vigilv1.NewCoordinatorClient(conn), "mallory", 4<<20)
	waitUploads(t, limits, 1)
	waitUploads(t, limits, 0)
	if err := upload(e.dial(mallory), "mallory", 1<<20); err != nil {
		t.Fatalf("after the stalled upload timed out: %v", err)
	}
}
