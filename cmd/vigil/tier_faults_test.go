package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/internal/natstest"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/sim"
	"github.com/vigilauth/vigil/store"
)

// TestTierProcessFaults runs a private, encrypted round on a coordinator tier of real processes:
// three nats-server processes holding the tier, the round leader, and two aggregation
// frontends. A frontend is SIGKILLed after acknowledging two updates, the next device goes to
// the other one; the leader is SIGKILLed, the last device's update is acknowledged while it is
// down, and the restarted leader releases the round with all four updates, charged once: the
// living frontend's two in its partial sum and verified by the trustees from it, the dead
// one's read from the tier and streamed by the leader.
//
// The updates' bytes are in the object store (--tier-blobs), as in a deployment on three
// machines: on the MinIO server CI runs, or in a directory when there is none. The dead
// frontend's updates are read from there.
func TestTierProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := newTierOrg(t, ctx)
	orgDir, dir, addr, urls, enrolAddr := o.orgDir, o.dir, o.addr, o.urls, o.enrolAddr
	blobsAt := filepath.Join(t.TempDir(), "tier-blobs")
	if endpoint := os.Getenv("VIGIL_MINIO_ENDPOINT"); endpoint != "" {
		blobsAt = "s3+http://" + endpoint + "/vigil-tier-" + strings.ToLower(rand.Text()[:8])
	}
	t.Logf("the updates' bytes are in %s", blobsAt)
	blobs, err := openTierBlobs(ctx, blobsAt, true, 1)
	if err != nil {
		t.Fatal(err)
	}
	startLeader := func() (*exec.Cmd, *lineWaiter) {
		c, w, _ := startProcess(t, ctx, o.coordinatorArgs(addr, "--tier-blobs", blobsAt)...)
		w.wait(t, "coordinator listening on ")
		return c, w
	}
	// The frontends keep parts: B's is used, and A's, lost with A, the leader reads from the
	// tier.
	startFrontend := func() (*exec.Cmd, string) {
		c, w, _ := startProcess(t, ctx, append([]string{"coordinator", "--frontend", "--org", orgDir, "--nats", urls, "--listen", "127.0.0.1:0", "--log-level", "warn", "--tier-blobs", blobsAt}, o.trustees...)...)
		line := w.wait(t, "frontend listening on ")
		return c, strings.Fields(line)[0]
	}
	leader, _ := startLeader()
	// A frontend given another store than the leader's would acknowledge updates the leader
	// cannot read: it is refused at start.
	wrongCtx, cancelWrong := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWrong()
	wrong := vigilCmd(wrongCtx, append([]string{"coordinator", "--frontend", "--org", orgDir, "--nats", urls, "--listen", "127.0.0.1:0", "--tier-blobs", t.TempDir()}, o.trustees...)...)
	if out, err := wrong.CombinedOutput(); err == nil || !strings.Contains(string(out), "not the round leader's") {
		t.Fatalf("a frontend with another --tier-blobs: %v\n%s", err, out)
	}
	feA, addrA := startFrontend()
	_, addrB := startFrontend()

	devices := tierDevices(t, ctx, orgDir, enrolAddr, addr, 4)
	submitVia := func(d tierDevice, at string) error { return d.submitVia(ctx, at) }
	for _, d := range devices[:2] {
		if err := submitVia(d, addrA); err != nil {
			t.Fatalf("%s via frontend A: %v", d.req.GetDeviceId(), err)
		}
	}
	if keys, err := updateObjects(ctx, blobs); err != nil || len(keys) != 2 {
		t.Fatalf("the object store holds %q (%v), want the 2 updates acknowledged", keys, err)
	}
	if err := feA.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	feA.Wait()
	if err := submitVia(devices[2], addrA); err == nil {
		t.Fatal("a killed frontend took an update")
	}
	if err := submitVia(devices[2], addrB); err != nil {
		t.Fatalf("%s via frontend B after A died: %v", devices[2].req.GetDeviceId(), err)
	}

	// The leader dies; the frontend goes on acknowledging into the tier.
	if err := leader.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	leader.Wait()
	if err := submitVia(devices[3], addrB); err != nil {
		t.Fatalf("%s via frontend B while the leader is down: %v", devices[3].req.GetDeviceId(), err)
	}
	// A device that did not hear its answer sends again: it is in once.
	if err := submitVia(devices[3], addrB); coordinator.Reason(err) != coordinator.ReasonDuplicate {
		t.Fatalf("%s sending again: %v, want %s", devices[3].req.GetDeviceId(), err, coordinator.ReasonDuplicate)
	}
	_, restarted, restartedLog := startProcess(t, ctx, o.coordinatorArgs(addr, "--log-level", "info", "--tier-blobs", blobsAt)...)
	restarted.wait(t, "stopped after 1 rounds")
	if log := restartedLog.String(); !strings.Contains(log, "frontends handed over their partial sums") || !strings.Contains(log, "reads some frontends' updates from the tier itself") {
		t.Errorf("the restarted leader did not use the living frontend's part and read the dead one's updates:\n%s", log)
	}

	st, _ := store.NewFS(filepath.Join(dir, "store"))
	g, err := coordinator.LoadModel(ctx, st, "keystroke-ae", 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err := dp.ReadLedger(filepath.Join(dir, "state", "model.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if g.Meta.Version != 2 || len(l.Entries) != 1 || l.Entries[0].Participants != 4 || l.Entries[0].Round != 1 {
		t.Fatalf("released v%d, ledger %+v; want v2, round 1 charged once with 4 participants", g.Meta.Version, l.Entries)
	}
	if keys, err := updateObjects(ctx, blobs); err != nil || len(keys) != 0 {
		t.Errorf("the released round left %q (%v) in the object store", keys, err)
	}
}

// updateObjects lists the updates in the tier's object store: every object but the store's
// identity, which the leader gives it.
func updateObjects(ctx context.Context, blobs cluster.Blobs) ([]string, error) {
	keys, err := blobs.List(ctx, "tier/")
	return slices.DeleteFunc(keys, func(k string) bool { return strings.HasSuffix(k, "/store-id") }), err
}

// TestTierLeaderStepsDown freezes the round leader (SIGSTOP: a long pause) in the middle of a
// round, for longer than its lease. Woken, it finds the lease gone, steps down and exits
// without writing its state again; the standby, which waited for the state directory (a
// shared volume) the frozen leader still held, takes over, resumes the round from the tier with
// the updates acknowledged before, and releases it with the rest, charged once.
func TestTierLeaderStepsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := newTierOrg(t, ctx)
	orgDir, dir, addr, urls, enrolAddr := o.orgDir, o.dir, o.addr, o.urls, o.enrolAddr
	coordinatorArgs := func(listen string) []string { return o.coordinatorArgs(listen, "--lease-ttl", "3s") }
	leader, leaderOut, leaderErr := startProcess(t, ctx, coordinatorArgs(addr)...)
	leaderOut.wait(t, "coordinator listening on ")
	_, standbyOut, _ := startProcess(t, ctx, coordinatorArgs(freeAddr(t))...)
	standbyOut.wait(t, "standby: waiting for the state directory")
	_, feOut, _ := startProcess(t, ctx, "coordinator", "--frontend", "--org", orgDir, "--nats", urls, "--listen", "127.0.0.1:0", "--log-level", "warn")
	frontend := strings.Fields(feOut.wait(t, "frontend listening on "))[0]

	devices := tierDevices(t, ctx, orgDir, enrolAddr, addr, 4)
	submit := func(i int) {
		t.Helper()
		if err := devices[i].submitVia(ctx, frontend); err != nil {
			t.Fatalf("%s: %v", devices[i].req.GetDeviceId(), err)
		}
	}
	submit(0)
	submit(1)

	if err := leader.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Frozen past its lease (3 s), it still holds the state directory: the standby waits.
	time.Sleep(4 * time.Second)
	if err := leader.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := leader.Wait(); err == nil {
		t.Fatal("the old leader exited cleanly after its lease ran out; want an error")
	}
	if !strings.Contains(leaderErr.String(), "stepped down") {
		t.Fatalf("the old leader's error does not say it stepped down:\n%s", leaderErr.String())
	}
	standbyOut.wait(t, "coordinator listening on ")
	submit(2)
	submit(3)
	standbyOut.wait(t, "stopped after 1 rounds")
	chargedOnce(t, dir)
}

// TestTierStandbyWithoutSharedStorage: the round leader and its standby run on two machines,
// each with a state directory of its own, and keep their state in the tier (--state-in-tier).
// The leader's machine dies (SIGKILL) two updates into a round; the standby takes the lease,
// restores the leader's state directory and model store from the tier (the registry, the
// open round, the privacy ledger and its key, the model's versions), resumes the round from
// the tier and releases it with all four updates, charged once.
func TestTierStandbyWithoutSharedStorage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := newTierOrg(t, ctx)
	standbyDir := t.TempDir()
	args := func(listen, dir string) []string {
		return o.coordinatorArgs(listen, "--lease-ttl", "3s", "--state-in-tier", "--dir", dir)
	}
	leader, leaderOut, _ := startProcess(t, ctx, args(o.addr, o.dir)...)
	leaderOut.wait(t, "state: "+o.dir+" copied to the tier")
	leaderOut.wait(t, "coordinator listening on ")
	_, standbyOut, standbyErr := startProcess(t, ctx, args(freeAddr(t), standbyDir)...)
	standbyOut.wait(t, "standby: waiting for the round leader's lease")
	_, feOut, _ := startProcess(t, ctx, "coordinator", "--frontend", "--org", o.orgDir, "--nats", o.urls, "--listen", "127.0.0.1:0", "--log-level", "warn")
	frontend := strings.Fields(feOut.wait(t, "frontend listening on "))[0]

	devices := tierDevices(t, ctx, o.orgDir, o.enrolAddr, o.addr, 4)
	for _, d := range devices[:2] {
		if err := d.submitVia(ctx, frontend); err != nil {
			t.Fatalf("%s: %v", d.req.GetDeviceId(), err)
		}
	}
	if err := leader.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	leader.Wait()
	killed := time.Now()
	standbyOut.wait(t, "state: restored "+standbyDir+" from the tier")
	t.Logf("state restored %v after the leader was killed (lease TTL 3 s)", time.Since(killed).Round(time.Millisecond))
	standbyOut.wait(t, "coordinator listening on ")
	for _, d := range devices[2:] {
		if err := d.submitVia(ctx, frontend); err != nil {
			t.Fatalf("%s: %v", d.req.GetDeviceId(), err)
		}
	}
	if line := standbyOut.wait(t, "stopped after "); !strings.HasPrefix(line, "1 rounds") {
		t.Fatalf("standby stopped after %s\n%s", line, standbyErr.String())
	}
	chargedOnce(t, standbyDir)
	st, _ := store.NewFS(filepath.Join(standbyDir, "store"))
	if g, err := coordinator.LoadModel(ctx, st, "keystroke-ae", 0); err != nil || g.Meta.Version != 2 {
		t.Fatalf("the standby's store: v%d, %v; want v2", g.Meta.Version, err)
	}

	// A leader without the flag would let the tier's copy grow old: it is refused.
	plain, _, plainErr := startProcess(t, ctx, o.coordinatorArgs(freeAddr(t), "--dir", t.TempDir())...)
	if err := plain.Wait(); err == nil || !strings.Contains(plainErr.String(), "start with --state-in-tier too") {
		t.Fatalf("a leader without --state-in-tier on the same tier: %v\n%s", err, plainErr.String())
	}
}

// TestTierLeaderLosesItsServer takes the nats-server the round leader is connected to away in
// the middle of a round, two updates in, and the round must still be released with all four
// updates, charged once, the devices retrying through one frontend as real ones do:
//
//   - frozen (SIGSTOP: hung, or cut off by the network): its connections stay open and nothing
//     answers, so the leader cannot renew its lease; it steps down and exits, and the standby
//     takes over while the round's stream elects a leader among the two servers left;
//   - stopped (SIGTERM): the leader's client moves to the servers the cluster advertises and the
//     leader keeps its lease and releases the round itself.
func TestTierLeaderLosesItsServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops processes")
	}
	for _, tc := range []struct {
		name      string
		lose      func(*testing.T, *natstest.Cluster) error
		stepsDown bool
	}{
		{"frozen", func(t *testing.T, c *natstest.Cluster) error {
			thaw, err := c.Freeze(0)
			if err == nil {
				t.Cleanup(func() { thaw() })
			}
			return err
		}, true},
		{"stopped", func(_ *testing.T, c *natstest.Cluster) error { return c.Stop(0) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			leaderLosesItsServer(t, tc.lose, tc.stepsDown)
		})
	}
}

func leaderLosesItsServer(t *testing.T, lose func(*testing.T, *natstest.Cluster) error, stepsDown bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o := newTierOrg(t, ctx)
	// The last --nats wins: the leader starts on server 0.
	leader, leaderOut, leaderErr := startProcess(t, ctx, o.coordinatorArgs(o.addr, "--lease-ttl", "3s", "--nats", o.nodes.URL(0))...)
	leaderOut.wait(t, "coordinator listening on ")
	_, standbyOut, standbyErr := startProcess(t, ctx, o.coordinatorArgs(freeAddr(t), "--lease-ttl", "3s", "--log-level", "info")...)
	standbyOut.wait(t, "standby: waiting for the state directory")
	_, feOut, feErr := startProcess(t, ctx, "coordinator", "--frontend", "--org", o.orgDir, "--nats", o.urls, "--listen", "127.0.0.1:0", "--log-level", "info")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the leader's log:\n%s\nthe standby's log:\n%s\nthe frontend's log:\n%s", leaderErr, standbyErr, feErr)
		}
	})
	frontend := strings.Fields(feOut.wait(t, "frontend listening on "))[0]

	devices := tierDevices(t, ctx, o.orgDir, o.enrolAddr, o.addr, 4)
	submit := func(i int) {
		t.Helper()
		var err error
		for attempt := 0; attempt < 60; attempt++ {
			// A duplicate is an earlier attempt stored whose answer was lost.
			if err = devices[i].submitVia(ctx, frontend); err == nil || coordinator.Reason(err) == coordinator.ReasonDuplicate {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Fatalf("%s: %v", devices[i].req.GetDeviceId(), err)
	}
	submit(0)
	submit(1)

	if err := lose(t, o.nodes); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	releaser := leaderOut
	if stepsDown {
		exited := make(chan error, 1)
		go func() { exited <- leader.Wait() }()
		select {
		case err := <-exited:
			if err == nil {
				t.Fatal("the leader exited cleanly without its server; want an error")
			}
		case <-time.After(30 * time.Second):
			// Its goroutines' stacks say where it is stuck.
			leader.Process.Signal(syscall.SIGQUIT)
			<-exited
			t.Fatalf("the leader still ran 30 s after its only server stopped answering:\n%s", leaderErr.String())
		}
		if !strings.Contains(leaderErr.String(), "stepped down") {
			t.Fatalf("the old leader's error does not say it stepped down:\n%s", leaderErr.String())
		}
		t.Logf("the leader stepped down %v after its server was lost", time.Since(lost).Round(time.Millisecond))
		standbyOut.wait(t, "coordinator listening on ")
		t.Logf("the standby took over after %v", time.Since(lost).Round(time.Millisecond))
		releaser = standbyOut
	}
	submit(2)
	submit(3)
	t.Logf("the last two updates stored after %v", time.Since(lost).Round(time.Millisecond))
	releaser.wait(t, "stopped after 1 rounds")
	t.Logf("the round released after %v", time.Since(lost).Round(time.Millisecond))
	chargedOnce(t, o.dir)
}

// chargedOnce checks that the privacy ledger of the coordinator in dir charged round 1, with the
// four test devices, and nothing else.
func chargedOnce(t *testing.T, dir string) {
	t.Helper()
	l, err := dp.ReadLedger(filepath.Join(dir, "state", "model.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || l.Entries[0].Participants != 4 || l.Entries[0].Round != 1 {
		t.Fatalf("ledger %+v; want round 1 charged once with 4 participants", l.Entries)
	}
}

// tierDevice is a test device enrolled with the coordinator, and its encrypted, signed update
// for the open round.
type tierDevice struct {
	ident *client.Identity
	req   *vigilv1.SubmitUpdateRequest
}

// tierDevices enrols n devices with the coordinator at addr, waits for their tasks and has
// each seal and sign its update, while the coordinator, which serves the key epoch, is up.
func tierDevices(t *testing.T, ctx context.Context, orgDir, enrolAddr, addr string, n int) []tierDevice {
	t.Helper()
	type enrolled struct {
		id     string
		api    vigilv1.CoordinatorClient
		sealer client.Sealer
		ident  *client.Identity
	}
	var fleet []enrolled
	for i := range n {
		id := fmt.Sprintf("dev-%d", i)
		api, sealer, ident := testDevice(t, ctx, orgDir, enrolAddr, addr, id)
		fleet = append(fleet, enrolled{id, api, sealer, ident})
	}
	var devices []tierDevice
	for _, d := range fleet {
		var task *vigilv1.Task
		for deadline := time.Now().Add(time.Minute); task == nil; time.Sleep(20 * time.Millisecond) {
			if r, err := d.api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: d.id}); err == nil {
				task = r.GetTask()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no task", d.id)
			}
		}
		u, err := d.sealer.Seal(ctx, task, make([]float64, sim.GlobalSpec().NumParams()))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := client.SignUpdate(d.ident.SigningKey, d.id, task, u)
		if err != nil {
			t.Fatal(err)
		}
		devices = append(devices, tierDevice{ident: d.ident, req: &vigilv1.SubmitUpdateRequest{DeviceId: d.id, Round: task.GetRound(),
			Nonce: task.GetNonce(), BaseVersion: task.GetBaseVersion(), Update: u, Signature: sig}})
	}
	return devices
}

// submitVia hands the device's update to the coordinator or frontend at addr, over the
// device's own certificate.
func (d tierDevice) submitVia(ctx context.Context, addr string) error {
	cert := d.ident.TLS.TLSCertificate()
	conn, err := transport.DialCoordinator(addr, pki.ClientTLS(&cert, d.ident.TLS.RootPool(), pki.Coordinator("")))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = vigilv1.NewCoordinatorClient(conn).SubmitUpdate(ctx, d.req)
	return err
}

// tierOrg is an organisation whose coordinator tier runs on three nats-server processes, with
// its trustees and enrolment authority as processes of their own.
type tierOrg struct {
	orgDir, dir, addr, urls, enrolAddr string
	trustees                           []string
	nodes                              *natstest.Cluster
}

func newTierOrg(t *testing.T, ctx context.Context) *tierOrg {
	t.Helper()
	orgDir := org(t)
	nodes := natstest.StartClusterTLS(t, 3, orgTierTLS(t, orgDir))
	o := &tierOrg{orgDir: orgDir, dir: t.TempDir(), addr: freeAddr(t), urls: strings.Join(nodes.URLs(), ","), nodes: nodes}
	o.trustees = startTrustees(t, ctx, o.orgDir, 4)
	o.enrolAddr = startAuthority(t, ctx, o.orgDir)
	return o
}

// coordinatorArgs are the flags of a round leader on the tier listening on listen: one private
// round of the four test devices' training updates.
func (o *tierOrg) coordinatorArgs(listen string, extra ...string) []string {
	args := []string{"coordinator", "--org", o.orgDir, "--listen", listen, "--metrics-listen", "", "--dir", o.dir, "--nats", o.urls,
		"--rounds", "1", "--devices-per-round", "4", "--min-updates", "4", "--round-timeout", "2m",
		"--clip", "1", "--noise-multiplier", "1", "--epsilon", "50", "--log-level", "warn", "--population-noise", "0"}
	return append(append(args, extra...), o.trustees...)
}
