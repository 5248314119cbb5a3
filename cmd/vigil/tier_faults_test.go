package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigilauth/vigil/client"
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
// down, and the restarted leader releases the round with all four updates, charged once.
func TestTierProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	nodes := natstest.StartCluster(t, 3)
	urls := strings.Join(nodes.URLs(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	orgDir, dir, addr := org(t), t.TempDir(), freeAddr(t)
	trustees := startTrustees(t, ctx, orgDir, 4)
	enrolAddr := startAuthority(t, ctx, orgDir)
	startLeader := func() (*exec.Cmd, *lineWaiter) {
		args := []string{"coordinator", "--org", orgDir, "--listen", addr, "--metrics-listen", "", "--dir", dir, "--nats", urls,
			"--rounds", "1", "--devices-per-round", "4", "--min-updates", "4", "--round-timeout", "2m",
			"--clip", "1", "--noise-multiplier", "1", "--epsilon", "50", "--log-level", "warn",
			"--population-noise", "0"} // the test devices send training updates only
		c, w, _ := startProcess(t, ctx, append(args, trustees...)...)
		w.wait(t, "coordinator listening on ")
		return c, w
	}
	startFrontend := func() (*exec.Cmd, string) {
		c, w, _ := startProcess(t, ctx, "coordinator", "--frontend", "--org", orgDir, "--nats", urls, "--listen", "127.0.0.1:0", "--log-level", "warn")
		line := w.wait(t, "frontend listening on ")
		return c, strings.Fields(line)[0]
	}
	leader, _ := startLeader()
	feA, addrA := startFrontend()
	_, addrB := startFrontend()

	type dev struct {
		id     string
		api    vigilv1.CoordinatorClient
		sealer client.Sealer
		ident  *client.Identity
		task   *vigilv1.Task
	}
	var devices []*dev
	for i := range 4 {
		id := fmt.Sprintf("dev-%d", i)
		api, sealer, ident := testDevice(t, ctx, orgDir, enrolAddr, addr, id)
		devices = append(devices, &dev{id: id, api: api, sealer: sealer, ident: ident})
	}
	for _, d := range devices {
		for deadline := time.Now().Add(time.Minute); d.task == nil; {
			if r, err := d.api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: d.id}); err == nil {
				d.task = r.GetTask()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no task", d.id)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Each device seals and signs its update while the leader, which serves the key epoch, is up.
	requests := map[string]*vigilv1.SubmitUpdateRequest{}
	for _, d := range devices {
		u, err := d.sealer.Seal(ctx, d.task, make([]float64, sim.GlobalSpec().NumParams()))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := client.SignUpdate(d.ident.SigningKey, d.id, d.task, u)
		if err != nil {
			t.Fatal(err)
		}
		requests[d.id] = &vigilv1.SubmitUpdateRequest{
			DeviceId: d.id, Round: d.task.GetRound(), Nonce: d.task.GetNonce(), BaseVersion: d.task.GetBaseVersion(), Update: u, Signature: sig}
	}
	// submitVia hands d's update to the frontend at addr, over the device's own certificate.
	submitVia := func(d *dev, at string) error {
		t.Helper()
		cert := d.ident.TLS.TLSCertificate()
		conn, err := transport.DialCoordinator(at, pki.ClientTLS(&cert, d.ident.TLS.RootPool(), pki.Coordinator("")))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = vigilv1.NewCoordinatorClient(conn).SubmitUpdate(cctx, requests[d.id])
		return err
	}
	for _, d := range devices[:2] {
		if err := submitVia(d, addrA); err != nil {
			t.Fatalf("%s via frontend A: %v", d.id, err)
		}
	}
	if err := feA.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	feA.Wait()
	if err := submitVia(devices[2], addrA); err == nil {
		t.Fatal("a killed frontend took an update")
	}
	if err := submitVia(devices[2], addrB); err != nil {
		t.Fatalf("%s via frontend B after A died: %v", devices[2].id, err)
	}

	// The leader dies; the frontend goes on acknowledging into the tier.
	if err := leader.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	leader.Wait()
	if err := submitVia(devices[3], addrB); err != nil {
		t.Fatalf("%s via frontend B while the leader is down: %v", devices[3].id, err)
	}
	// A device that did not hear its answer sends again: it is in once.
	if err := submitVia(devices[3], addrB); coordinator.Reason(err) != coordinator.ReasonDuplicate {
		t.Fatalf("%s sending again: %v, want %s", devices[3].id, err, coordinator.ReasonDuplicate)
	}
	_, restarted := startLeader()
	restarted.wait(t, "stopped after 1 rounds")

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
}

// TestTierLeaderStepsDown freezes the round leader (SIGSTOP: a long pause, or a partition) in
// the middle of a round, for longer than its lease. The standby waiting on the same state
// directory (a shared volume) takes the lease, resumes the round from the tier with the updates
// acknowledged before, and releases it with the rest. When the old leader wakes it steps down
// and exits without writing to the state its successor now owns.
func TestTierLeaderStepsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops processes")
	}
	nodes := natstest.StartCluster(t, 3)
	urls := strings.Join(nodes.URLs(), ",")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	orgDir, dir, addr := org(t), t.TempDir(), freeAddr(t)
	trustees := startTrustees(t, ctx, orgDir, 4)
	enrolAddr := startAuthority(t, ctx, orgDir)
	coordinatorArgs := func(listen string) []string {
		return append([]string{"coordinator", "--org", orgDir, "--listen", listen, "--metrics-listen", "", "--dir", dir, "--nats", urls,
			"--lease-ttl", "3s", "--rounds", "1", "--devices-per-round", "4", "--min-updates", "4", "--round-timeout", "2m",
			"--clip", "1", "--noise-multiplier", "1", "--epsilon", "50", "--log-level", "warn", "--population-noise", "0"}, trustees...)
	}
	leader, leaderOut, leaderErr := startProcess(t, ctx, coordinatorArgs(addr)...)
	leaderOut.wait(t, "coordinator listening on ")
	_, standbyOut, _ := startProcess(t, ctx, coordinatorArgs(freeAddr(t))...)
	standbyOut.wait(t, "standby: waiting for the round leader's lease")
	_, feOut, _ := startProcess(t, ctx, "coordinator", "--frontend", "--org", orgDir, "--nats", urls, "--listen", "127.0.0.1:0", "--log-level", "warn")
	frontend := strings.Fields(feOut.wait(t, "frontend listening on "))[0]

	type enrolled struct {
		api    vigilv1.CoordinatorClient
		sealer client.Sealer
		ident  *client.Identity
	}
	var fleet []enrolled
	for i := range 4 {
		api, sealer, ident := testDevice(t, ctx, orgDir, enrolAddr, addr, fmt.Sprintf("dev-%d", i))
		fleet = append(fleet, enrolled{api, sealer, ident})
	}
	var requests []*vigilv1.SubmitUpdateRequest
	for i, d := range fleet {
		id := fmt.Sprintf("dev-%d", i)
		var task *vigilv1.Task
		for deadline := time.Now().Add(time.Minute); task == nil; time.Sleep(20 * time.Millisecond) {
			if r, err := d.api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: id}); err == nil {
				task = r.GetTask()
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no task", id)
			}
		}
		u, err := d.sealer.Seal(ctx, task, make([]float64, sim.GlobalSpec().NumParams()))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := client.SignUpdate(d.ident.SigningKey, id, task, u)
		if err != nil {
			t.Fatal(err)
		}
		requests = append(requests, &vigilv1.SubmitUpdateRequest{DeviceId: id, Round: task.GetRound(), Nonce: task.GetNonce(),
			BaseVersion: task.GetBaseVersion(), Update: u, Signature: sig})
	}
	submit := func(i int) {
		t.Helper()
		cert := fleet[i].ident.TLS.TLSCertificate()
		conn, err := transport.DialCoordinator(frontend, pki.ClientTLS(&cert, fleet[i].ident.TLS.RootPool(), pki.Coordinator("")))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if _, err := vigilv1.NewCoordinatorClient(conn).SubmitUpdate(cctx, requests[i]); err != nil {
			t.Fatalf("%s: %v", requests[i].GetDeviceId(), err)
		}
	}
	submit(0)
	submit(1)

	if err := leader.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	standbyOut.wait(t, "coordinator listening on ")
	submit(2)
	submit(3)
	standbyOut.wait(t, "stopped after 1 rounds")
	state := filepath.Join(dir, "state", "coordinator.state")
	before, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}

	if err := leader.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := leader.Wait(); err == nil {
		t.Fatal("the old leader exited cleanly after its lease ran out; want an error")
	}
	if !strings.Contains(leaderErr.String(), "stepped down") {
		t.Fatalf("the old leader's error does not say it stepped down:\n%s", leaderErr.String())
	}
	after, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size() {
		t.Fatalf("the old leader wrote the state file after it woke (%v, %d bytes -> %v, %d bytes)", before.ModTime(), before.Size(), after.ModTime(), after.Size())
	}
	l, err := dp.ReadLedger(filepath.Join(dir, "state", "model.ledger"))
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Entries) != 1 || l.Entries[0].Participants != 4 || l.Entries[0].Round != 1 {
		t.Fatalf("ledger %+v; want round 1 charged once with 4 participants", l.Entries)
	}
}
