package coordinator_test

import (
	"context"
	"fmt"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vigilauth/vigil/coordinator"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestInstalledVersionsCounted: devices say which release they run with each GetTask, over
// real gRPC; the Admin API's status counts them per model version and lists each device's,
// follows a device that updates, forgets a removed one, and a malformed report is refused.
func TestInstalledVersionsCounted(t *testing.T) {
	cfg := privateConfig(t, t.TempDir(), t.TempDir(), 1)
	c, err := coordinator.New(context.Background(), cfg, coordinator.Insecure{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(coordinator.ServerOptions()...)
	c.Register(srv)
	c.RegisterAdmin(srv, coordinator.AdminConfig{})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	api, admin := vigilv1.NewCoordinatorClient(conn), vigilv1.NewAdminClient(conn)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		c.Run(ctx)
		close(ran)
	}()
	t.Cleanup(func() {
		cancel()
		<-ran
	})
	c.Pause() // no round: this test is about the registry
	enrol(t, api, "a", "b", "c", "d")

	report := func(id string, installed map[string]uint64) error {
		_, err := api.GetTask(ctx, &vigilv1.GetTaskRequest{DeviceId: id, Installed: installed})
		return err
	}
	counts := func() (string, *vigilv1.StatusResponse) {
		st, err := admin.Status(ctx, &vigilv1.StatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, n := range st.GetInstalled() {
			s += fmt.Sprintf("%s v%d: %d; ", n.GetModel(), n.GetVersion(), n.GetDevices())
		}
		return s, st
	}
	for id, inst := range map[string]map[string]uint64{
		"a": {"keystroke-ae": 3, "keystroke-pop": 1},
		"b": {"keystroke-ae": 3},
		"c": {"keystroke-ae": 2},
	} {
		if err := report(id, inst); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if err := report("d", nil); err != nil { // says nothing: counted nowhere
		t.Fatal(err)
	}
	got, st := counts()
	if want := "keystroke-ae v2: 1; keystroke-ae v3: 2; keystroke-pop v1: 1; "; got != want {
		t.Errorf("status counts %q, want %q", got, want)
	}
	for _, d := range st.GetDevices() {
		switch d.GetId() {
		case "a":
			if d.GetInstalled()["keystroke-pop"] != 1 || d.GetInstalled()["keystroke-ae"] != 3 {
				t.Errorf("device a: installed %v", d.GetInstalled())
			}
		case "d":
			if len(d.GetInstalled()) != 0 {
				t.Errorf("device d reported nothing, status says %v", d.GetInstalled())
			}
		}
	}

	// c installs v3; an empty report from b keeps what b said before; a is removed.
	if err := report("c", map[string]uint64{"keystroke-ae": 3}); err != nil {
		t.Fatal(err)
	}
	if err := report("b", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDevice(ctx, "a", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := counts(); got != "keystroke-ae v3: 2; " {
		t.Errorf("after c's update and a's removal: counts %q, want keystroke-ae v3: 2", got)
	}

	tooMany := map[string]uint64{}
	for i := range vigilv1.MaxInstalledModels + 1 {
		tooMany[fmt.Sprintf("model-%d", i)] = 1
	}
	for name, bad := range map[string]map[string]uint64{
		"too many models": tooMany,
		"version 0":       {"keystroke-ae": 0},
		"bad model name":  {"keystroke ae/../x": 4},
	} {
		if err := report("b", bad); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: GetTask = %v, want InvalidArgument", name, err)
		}
	}
	if got, _ := counts(); got != "keystroke-ae v3: 2; " {
		t.Errorf("refused reports changed the counts: %q", got)
	}
}
