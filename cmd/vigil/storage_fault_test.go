package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/client"
	"github.com/vigilauth/vigil/coordinator"
	"github.com/vigilauth/vigil/internal/transport"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestStateWriteFailureAnswersNotDurable breaks the coordinator process's state directory (as
// a failed disk would: its path becomes a file) while a device enrols (its first call after
// Enroll, which takes it into the registry): the coordinator stops, but first answers the
// waiting call Unavailable NOT_DURABLE, so that the device retries
// elsewhere, rather than dropping the connection under it.
func TestStateWriteFailureAnswersNotDurable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	orgDir, dir := org(t), t.TempDir()
	enrolAddr := startAuthority(t, ctx, orgDir)
	coord, lines, _ := startProcess(t, ctx, "coordinator", "--org", orgDir, "--dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "",
		"--insecure-plaintext", "--min-enrolled", "5", "--model-layers", "16,32,16", "--log-level", "error")
	addr := lines.wait(t, "coordinator listening on ")
	enrolAttackDevice(t, t.Cleanup, ctx, orgDir, enrolAddr, addr, "first", 0)

	state := filepath.Join(dir, "state")
	if err := os.Rename(state, state+".gone"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(state, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
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
		DeviceID: "second", Region: "eu", Token: token(t, orgDir, "second"), Authority: vigilv1.NewEnrolmentClient(authority),
		Coordinator: vigilv1.NewCoordinatorClient(boot), Bootstrap: ca,
	})
	if err != nil {
		t.Fatalf("enrolment writes nothing, so it succeeds: %v", err)
	}
	// The device's first call takes it into the registry, which must reach the disk.
	cert := ident.TLS.TLSCertificate()
	conn, err := transport.DialCoordinator(addr, pki.ClientTLS(&cert, ident.TLS.RootPool(), pki.Coordinator("")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = vigilv1.NewCoordinatorClient(conn).GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: "second"})
	if coordinator.Reason(err) != coordinator.ReasonNotDurable || status.Code(err) != codes.Unavailable {
		t.Fatalf("a device's first call while the state cannot be written: %v; want Unavailable %s", err, coordinator.ReasonNotDurable)
	}
	if err := coord.Wait(); err == nil {
		t.Fatal("the coordinator carried on without its state")
	}
}
