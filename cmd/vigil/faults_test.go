package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/sim"
	"github.com/vigilauth/vigil/store"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// metric returns the value of one sample of the coordinator's /metrics, or -1.
func metric(url, sample string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(regexp.QuoteMeta(sample) + ` (\S+)`).FindSubmatch(body)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestCoordinatorProcessFaults kills the coordinator process in the middle of a private,
// encrypted round, once with SIGKILL and once with SIGTERM, after three of four updates were
// acknowledged, and restarts it on the same directory: the round resumes with exactly those
// three in its encrypted sum, the fourth completes it, the trustees (separate processes that
// outlive the coordinator) decrypt it once, and the privacy ledger holds the round once.
func TestCoordinatorProcessFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills processes")
	}
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { processFault(t, sig) })
	}
}

func processFault(t *testing.T, sig syscall.Signal) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	orgDir, dir, addr, metricsAddr := org(t), t.TempDir(), freeAddr(t), freeAddr(t)
	trustees := startTrustees(t, ctx, orgDir, 4)
	enrolAddr := startAuthority(t, ctx, orgDir)
	startCoordinator := func() (*exec.Cmd, *lineWaiter) {
		args := []string{"coordinator", "--org", orgDir, "--listen", addr, "--metrics-listen", metricsAddr, "--dir", dir,
			"--rounds", "1", "--devices-per-round", "4", "--min-updates", "4", "--round-timeout", "2m",
			"--clip", "1", "--noise-multiplier", "1", "--epsilon", "50", "--log-level", "warn",
			"--population-noise", "0"} // the test devices send training updates only
		c, w, _ := startProcess(t, ctx, append(args, trustees...)...)
		w.wait(t, "coordinator listening on ")
		return c, w
	}
	coord, _ := startCoordinator()

	// The test itself is the fourth device, which answers only after the restart.
	api, sealer, late := testDevice(t, ctx, orgDir, enrolAddr, addr, "late")
	var clients []*exec.Cmd
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("proc-%d", i)
		args := append([]string{"client", "--coordinator", addr, "--device-id", id, "--dir", filepath.Join(t.TempDir(), id),
			"--root", filepath.Join(orgDir, "root.json"), "--synthetic-seed", fmt.Sprint(i), "--rounds", "1", "--log-level", "error"},
			enrolFlags(t, orgDir, enrolAddr, id)...)
		c, out, _ := startProcess(t, ctx, args...)
		go func() {
			for range out.lines {
			}
		}()
		clients = append(clients, c)
	}
	url := "http://" + metricsAddr + "/metrics"
	for deadline := time.Now().Add(time.Minute); metric(url, `vigil_updates_total{reason="",result="accepted"}`) < 3; {
		if time.Now().After(deadline) {
			t.Fatal("three updates were not accepted within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := coord.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := coord.Wait()
	if sig == syscall.SIGTERM && err != nil {
		t.Fatalf("coordinator did not stop cleanly on SIGTERM: %v", err)
	}
	if sig == syscall.SIGKILL && err == nil {
		t.Fatal("coordinator survived SIGKILL")
	}

	coord, lines := startCoordinator()
	var task *vigilv1.Task
	for deadline := time.Now().Add(time.Minute); task == nil; {
		r, err := api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "late"})
		if err == nil {
			task = r.GetTask()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no task for the late device after the restart: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if task.GetRound() != 1 {
		t.Fatalf("after the restart the late device is asked for round %d, want the resumed round 1", task.GetRound())
	}
	u, err := sealer.Seal(ctx, task, make([]float64, sim.GlobalSpec().NumParams()))
	if err != nil {
		t.Fatal(err)
	}
	signature, err := client.SignUpdate(late.SigningKey, "late", task, u)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := api.SubmitUpdate(ctx, &vigilv1.SubmitUpdateRequest{DeviceId: "late", Round: 1, Nonce: task.GetNonce(), BaseVersion: task.GetBaseVersion(), Update: u, Signature: signature})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetAccepted() != 4 {
		t.Fatalf("the late update made %d accepted updates, want 4: three survived the restart, none twice", resp.GetAccepted())
	}
	lines.wait(t, "stopped after 1 rounds")
	if err := coord.Wait(); err != nil {
		t.Fatalf("restarted coordinator: %v", err)
	}
	for i, c := range clients {
		if err := c.Wait(); err != nil {
			t.Errorf("client %d: %v", i+1, err)
		}
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
	// The participant count is in the ledger, not in the release.
	if g.Meta.Version != 2 || len(l.Entries) != 1 || l.Entries[0].Participants != 4 {
		t.Fatalf("released v%d, ledger %+v; want v2 with 4 participants", g.Meta.Version, l.Entries)
	}
	if len(l.Entries) != 1 || l.Entries[0].Round != 1 {
		t.Fatalf("ledger entries %+v, want round 1 once", l.Entries)
	}
}

// testDevice registers device id with the enrolment authority at enrolAddr, enrols it with the
// coordinator over TLS, and returns its API, its encrypting sealer and its identity.
func testDevice(t *testing.T, ctx context.Context, orgDir, enrolAddr, addr, id string) (vigilv1.CoordinatorClient, client.Sealer, *client.Identity) {
	t.Helper()
	ca, err := pki.ReadCertificates(filepath.Join(orgDir, "pki", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	authCA, err := pki.ReadCertificates(filepath.Join(orgDir, "enrol", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	authority, err := grpc.NewClient(enrolAddr, grpc.WithTransportCredentials(credentials.NewTLS(
		pki.ClientTLS(nil, pki.Credentials{Roots: authCA}.RootPool(), pki.EnrolmentAuthority("")))))
	if err != nil {
		t.Fatal(err)
	}
	defer authority.Close()
	boot, err := transport.DialCoordinator(addr, pki.ClientTLS(nil, pki.Credentials{Roots: ca}.RootPool(), pki.Coordinator("")))
	if err != nil {
		t.Fatal(err)
	}
	defer boot.Close()
	ident, err := client.Enrol(ctx, client.EnrolConfig{
		DeviceID: id, Region: "eu", Token: token(t, orgDir, id), Authority: vigilv1.NewEnrolmentClient(authority),
		Coordinator: vigilv1.NewCoordinatorClient(boot), Bootstrap: ca,
	})
	if err != nil {
		t.Fatal(err)
	}
	cert := ident.TLS.TLSCertificate()
	conn, err := transport.DialCoordinator(addr, pki.ClientTLS(&cert, ident.TLS.RootPool(), pki.Coordinator("")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	api := vigilv1.NewCoordinatorClient(conn)
	// The first call after enrolling takes the device into the registry, as a real device's
	// first poll does.
	if _, err := api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: id}); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(orgDir, "root.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := client.NewSignedKeys(api, root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return api, client.NewThresholdSealer(id, keys), ident
}
