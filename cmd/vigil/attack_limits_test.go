package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// deviceAttackRSSBound is the most resident memory the coordinator may use while one device
// sends 19 MiB requests to methods that take small ones, from four connections at once. gRPC
// reads such a request before any per-method check can run (pki.RequestLimits says why), so
// the bound comes from the device's cap on open calls: deviceCalls (4) requests of 19 MiB read
// at the same time, 76 MiB, never decoded, on top of the coordinator's own 40 to 60 MiB.
// Without the cap the four connections would hold 32 such requests; decoding them copied each
// twice more (measured: 595 MiB with 8 open calls and decoding, 348 MiB with 4).
const deviceAttackRSSBound = 200 << 20

// TestAttackDeviceOversizedRequests: a device with a valid certificate sends 19 MiB GetTask,
// GetModel, GetKeyEpoch and Enroll requests to a real coordinator process, eight at a time on
// each of four connections. Each is refused ResourceExhausted, naming its method's limit
// (REQUEST_TOO_LARGE) or the device's cap on open calls (TOO_MANY_CALLS); the coordinator's
// memory stays below deviceAttackRSSBound, and another device is served meanwhile.
func TestAttackDeviceOversizedRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pid, addr, mallory, honest := startAttackedCoordinator(t, ctx)
	cert := mallory.ident.TLS.TLSCertificate()

	const pad = 19 << 20
	// padded returns msg with a 19 MiB field it does not know: every request type can carry
	// one, and the coordinator reads it all.
	padded := func(msg proto.Message) proto.Message {
		b := protowire.AppendTag(nil, 1000, protowire.BytesType)
		msg.ProtoReflect().SetUnknown(protowire.AppendBytes(b, make([]byte, pad)))
		return msg
	}
	calls := []struct {
		method string
		call   func(ctx context.Context, api vigilv1.CoordinatorClient) error
	}{
		{vigilv1.Coordinator_GetTask_FullMethodName, func(ctx context.Context, api vigilv1.CoordinatorClient) error {
			_, err := api.GetTask(ctx, padded(&vigilv1.GetTaskRequest{DeviceId: "mallory"}).(*vigilv1.GetTaskRequest))
			return err
		}},
		{vigilv1.Coordinator_GetModel_FullMethodName, func(ctx context.Context, api vigilv1.CoordinatorClient) error {
			_, err := api.GetModel(ctx, padded(&vigilv1.GetModelRequest{}).(*vigilv1.GetModelRequest))
			return err
		}},
		{vigilv1.Coordinator_GetKeyEpoch_FullMethodName, func(ctx context.Context, api vigilv1.CoordinatorClient) error {
			_, err := api.GetKeyEpoch(ctx, padded(&vigilv1.GetKeyEpochRequest{}).(*vigilv1.GetKeyEpochRequest))
			return err
		}},
		{vigilv1.Coordinator_Enroll_FullMethodName, func(ctx context.Context, api vigilv1.CoordinatorClient) error {
			_, err := api.Enroll(ctx, padded(&vigilv1.EnrollRequest{DeviceId: "mallory"}).(*vigilv1.EnrollRequest))
			return err
		}},
	}

	before, _ := processRSS(pid)
	actx, stop := context.WithCancel(ctx)
	peak := sampleRSS(actx, pid)
	var (
		mu      sync.Mutex
		refused = map[string]int{} // by reason
		wrong   []string
	)
	var wg sync.WaitGroup
	for range 4 {
		conn, err := transport.DialCoordinator(addr, pki.ClientTLS(&cert, mallory.ident.TLS.RootPool(), pki.Coordinator("")))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		api := vigilv1.NewCoordinatorClient(conn)
		for i := range 8 {
			wg.Go(func() {
				for n := i; actx.Err() == nil; n++ {
					c := calls[n%len(calls)]
					err := c.call(actx, api)
					if actx.Err() != nil {
						return
					}
					reason := coordinator.Reason(err)
					limit := vigilv1.MaxRequestBytes(c.method)
					ok := status.Code(err) == codes.ResourceExhausted &&
						(reason == pki.ReasonTooManyCalls || reason == pki.ReasonRequestTooLarge &&
							strings.Contains(err.Error(), c.method) && strings.Contains(err.Error(), "at most "+strconv.Itoa(limit)+" bytes"))
					mu.Lock()
					if ok {
						refused[reason]++
					} else if len(wrong) < 5 {
						wrong = append(wrong, c.method+": "+errString(err))
					}
					mu.Unlock()
				}
			})
		}
	}
	// The attack runs until eight oversized requests have been read and refused (each takes
	// the coordinator a moment: 19 MiB over TLS), the device's other calls refused meanwhile.
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		n := refused[pki.ReasonRequestTooLarge]
		mu.Unlock()
		if n >= 8 || time.Now().After(deadline) {
			break
		}
	}
	served := 0
	for range 5 {
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := honest.api.GetModel(cctx, &vigilv1.GetModelRequest{})
		ccancel()
		if err != nil {
			t.Errorf("another device under the attack: %v", err)
		} else {
			served++
		}
	}
	stop()
	wg.Wait()
	p := peak()

	t.Logf("coordinator RSS %d MiB before, peak %d MiB under the attack (bound %d MiB); refused %v; the other device served %d of 5 times",
		before>>20, p>>20, deviceAttackRSSBound>>20, refused, served)
	if len(wrong) > 0 {
		t.Errorf("oversized requests not refused as they should be: %s", strings.Join(wrong, "; "))
	}
	if refused[pki.ReasonRequestTooLarge] == 0 || refused[pki.ReasonTooManyCalls] == 0 {
		t.Errorf("refusals %v: want both %s and %s", refused, pki.ReasonRequestTooLarge, pki.ReasonTooManyCalls)
	}
	if p > deviceAttackRSSBound && !raceEnabled {
		t.Errorf("coordinator RSS reached %d MiB under the attack, bound %d MiB", p>>20, deviceAttackRSSBound>>20)
	}
}

// startAttackedCoordinator starts a coordinator process with its authority and two trustees,
// and enrols two devices, "mallory" and "honest"; it returns the coordinator's process ID and
// address.
func startAttackedCoordinator(t *testing.T, ctx context.Context) (pid int, addr string, mallory, honest *attackDevice) {
	t.Helper()
	orgDir, dir := org(t), t.TempDir()
	enrolAddr := startAuthority(t, ctx, orgDir)
	args := []string{"coordinator", "--org", orgDir, "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "",
		"--rounds", "1", "--devices-per-round", "2", "--min-updates", "2", "--min-enrolled", "2", "--round-timeout", "3m",
		"--model-layers", "16,64,16", "--clip", "1", "--noise-multiplier", "1", "--epsilon", "50", "--log-level", "warn"}
	coord, lines, _ := startProcess(t, ctx, append(args, startTrustees(t, ctx, orgDir, 2)...)...)
	addr = lines.wait(t, "coordinator listening on ")
	go func() {
		for range lines.lines {
		}
	}()
	mallory = enrolAttackDevice(t, t.Cleanup, ctx, orgDir, enrolAddr, addr, "mallory", 0)
	honest = enrolAttackDevice(t, t.Cleanup, ctx, orgDir, enrolAddr, addr, "honest", 0)
	return coord.Process.Pid, addr, mallory, honest
}

// sampleRSS samples pid's resident memory every 10 ms until ctx ends; the function it returns
// waits for that and returns the peak.
func sampleRSS(ctx context.Context, pid int) func() uint64 {
	var peak uint64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if rss, ok := processRSS(pid); ok && rss > peak {
				peak = rss
			}
			sleepCtx(ctx, 10*time.Millisecond)
		}
	}()
	return func() uint64 { <-done; return peak }
}

func errString(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}

// uploadAttackRSSBound is the most resident memory the coordinator may use while one device
// sends 38 MiB updates from four connections at once: the coordinator's own 40 to 60 MiB and
// one update read at a time, refused undecoded since it is longer than any of the
// coordinator's rounds takes. The test runs the coordinator with GOGC=25, so that what it
// measures is what is held rather than when the collector runs. Before a device was held to
// one upload, its four allowed calls were all uploads, each decoded: 396-399 MiB here; with
// one upload a device, still decoded, 228-244 MiB.
const uploadAttackRSSBound = 150 << 20

// TestAttackDeviceLargeUploads: a device with a valid certificate sends 38 MiB SubmitUpdate
// requests, within the API's message limit, to a real coordinator process, four at a time on
// each of four connections. Each is refused REQUEST_TOO_LARGE, naming the coordinator's limit,
// or TOO_MANY_CALLS, the device having an upload open already; the coordinator's memory stays
// below uploadAttackRSSBound, and another device is served meanwhile.
func TestAttackDeviceLargeUploads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t.Setenv("GOGC", "25")
	pid, addr, mallory, honest := startAttackedCoordinator(t, ctx)
	cert := mallory.ident.TLS.TLSCertificate()
	req := &vigilv1.SubmitUpdateRequest{DeviceId: "mallory", Round: 1, Nonce: make([]byte, vigilv1.NonceSize)}
	b := protowire.AppendTag(nil, 1000, protowire.BytesType)
	req.ProtoReflect().SetUnknown(protowire.AppendBytes(b, make([]byte, 38<<20)))

	before, _ := processRSS(pid)
	actx, stop := context.WithCancel(ctx)
	peak := sampleRSS(actx, pid)
	var (
		mu       sync.Mutex
		answered = map[string]int{} // by reason
	)
	var wg sync.WaitGroup
	for range 4 {
		conn, err := transport.DialCoordinator(addr, pki.ClientTLS(&cert, mallory.ident.TLS.RootPool(), pki.Coordinator("")))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		api := vigilv1.NewCoordinatorClient(conn)
		for range 4 {
			wg.Go(func() {
				for actx.Err() == nil {
					_, err := api.SubmitUpdate(actx, req)
					if actx.Err() != nil {
						return
					}
					answer := fmt.Sprintf("%s %s", status.Code(err), coordinator.Reason(err))
					if coordinator.Reason(err) == pki.ReasonRequestTooLarge && !strings.Contains(err.Error(), vigilv1.Coordinator_SubmitUpdate_FullMethodName+" accepts requests of at most") {
						answer += " without naming the limit"
					}
					mu.Lock()
					answered[answer]++
					mu.Unlock()
				}
			})
		}
	}
	tooMany := fmt.Sprintf("%s %s", codes.Unavailable, pki.ReasonTooManyCalls)
	tooLarge := fmt.Sprintf("%s %s", codes.ResourceExhausted, pki.ReasonRequestTooLarge)
	// The attack runs until eight uploads have been refused for their size.
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		mu.Lock()
		n := answered[tooLarge]
		mu.Unlock()
		if n >= 8 || time.Now().After(deadline) {
			break
		}
	}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	_, served := honest.api.GetModel(cctx, &vigilv1.GetModelRequest{})
	ccancel()
	stop()
	wg.Wait()
	p := peak()

	t.Logf("coordinator RSS %d MiB before, peak %d MiB under the attack (bound %d MiB); answers %v; the other device: %v",
		before>>20, p>>20, uploadAttackRSSBound>>20, answered, served)
	if served != nil {
		t.Errorf("another device under the attack: %v", served)
	}
	for answer := range answered {
		if answer != tooMany && answer != tooLarge {
			t.Errorf("answers %v: want each refused for its size or as the device's second upload", answered)
			break
		}
	}
	if answered[tooLarge] == 0 {
		t.Errorf("answers %v: no upload refused for its size", answered)
	}
	if p > uploadAttackRSSBound && !raceEnabled {
		t.Errorf("coordinator RSS reached %d MiB under the attack, bound %d MiB", p>>20, uploadAttackRSSBound>>20)
	}
}
