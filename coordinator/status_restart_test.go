package coordinator_test

import (
	"context"
	"testing"
	"time"

	"github.com/vigilauth/vigil/coordinator"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// TestStatusSurvivesRestart: the devices' last-seen times and a removal's reason are in the
// status of a coordinator restarted on the same state directory, and in ReadStatus of that
// directory. Last-seen times are saved with the next state write (here the removal's), not by
// the calls themselves.
func TestStatusSurvivesRestart(t *testing.T) {
	storeDir, stateDir := t.TempDir(), t.TempDir()
	api, c, stop := serve(t, storeDir, stateDir)
	enrol(t, api, "a", "b", "c", "d")
	waitTask(t, api, "a")
	waitTask(t, api, "b")
	before := c.Status()
	if err := c.RemoveDevice(context.Background(), "d", "lost laptop"); err != nil {
		t.Fatal(err)
	}
	stop()

	_, c, _ = serve(t, storeDir, stateDir)
	fromFile, err := coordinator.ReadStatus(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		st   *vigilv1.StatusResponse
	}{{"restarted coordinator", c.Status()}, {"ReadStatus", fromFile}} {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[string]time.Time{}
			for _, d := range before.GetDevices() {
				if d.GetLastSeen() != nil {
					seen[d.GetId()] = d.GetLastSeen().AsTime()
				}
			}
			if len(seen) < 2 {
				t.Fatalf("before the restart only %v were seen; want a and b", seen)
			}
			for _, d := range tc.st.GetDevices() {
				want, ok := seen[d.GetId()]
				if got := d.GetLastSeen(); ok && (got == nil || !got.AsTime().Equal(want)) || !ok && got != nil {
					t.Errorf("%s: last seen %v, want %v (seen before the restart: %v)", d.GetId(), got, want, ok)
				}
			}
			if len(tc.st.GetDevices()) != 3 {
				t.Errorf("%d devices, want a, b and c", len(tc.st.GetDevices()))
			}
			rm := tc.st.GetRemoved()
			if len(rm) != 1 || rm[0].GetId() != "d" || rm[0].GetReason() != "lost laptop" || rm[0].GetRemoved() == nil {
				t.Errorf("removed %v, want d with its reason and time", rm)
			}
		})
	}
}
