package client

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// reportingCoordinator enrols the device and records what each GetTask says is installed.
type reportingCoordinator struct {
	refusingCoordinator
	got []map[string]uint64
}

func (r *reportingCoordinator) GetTask(_ context.Context, req *vigilv1.GetTaskRequest, _ ...grpc.CallOption) (*vigilv1.GetTaskResponse, error) {
	r.got = append(r.got, req.GetInstalled())
	return &vigilv1.GetTaskResponse{RetryAfterMillis: 1}, nil
}

// TestPollReportsInstalled: each GetTask carries Config.Installed's report, without models at
// version 0; a report the coordinator would refuse is left out rather than cost the poll.
func TestPollReportsInstalled(t *testing.T) {
	report := map[string]uint64{"keystroke-ae": 7, "keystroke-pop": 0}
	coord := &reportingCoordinator{}
	a, err := New(Config{DeviceID: "d1", Coordinator: coord, Data: Rows{{0.1, 0.2}}, Sealer: InsecurePlaintext{},
		Installed: func() map[string]uint64 { return report }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := a.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	report = map[string]uint64{"no spaces allowed": 3}
	if _, err := a.Poll(ctx); err != nil {
		t.Fatalf("a malformed report failed the poll: %v", err)
	}
	if len(coord.got) != 2 || len(coord.got[0]) != 1 || coord.got[0]["keystroke-ae"] != 7 || coord.got[1] != nil {
		t.Errorf("GetTask carried %v, want [map[keystroke-ae:7] map[]]", coord.got)
	}
}
