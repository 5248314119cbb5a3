package coordinator

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"google.golang.org/protobuf/types/known/timestamppb"

	statev1 "github.com/vigilauth/vigil/proto/vigil/state/v1"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// ReadStatus builds the part of a Status that the state saved in stateDir (Config.StateDir)
// holds: the model, the last round started, the open round with its missing devices, the
// registry with last-seen times as of the last state write, the removed devices, and the
// rounds that ended recently, with the last one's outcome. What only a running coordinator
// knows (trustees' health, regions' publishing) is left unset; read it with the Admin API. It is for
// read-only tools (vigil console) that must not need a connection to the coordinator.
func ReadStatus(stateDir string) (*vigilv1.StatusResponse, error) {
	f := &stateFile{path: filepath.Join(stateDir, "coordinator.state")}
	st, err := f.load()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, fmt.Errorf("coordinator: no state in %s: %w", stateDir, fs.ErrNotExist)
	}
	out := &vigilv1.StatusResponse{Model: st.GetModelName(), LastRoundStarted: st.GetLastRound()}
	if r := st.GetRound(); r != nil && r.GetId() != 0 {
		o := &vigilv1.OpenRoundStatus{Round: r.GetId(), BaseVersion: r.GetBaseVersion(), Started: r.GetStarted(),
			Deadline: r.GetDeadline(), Selected: uint32(len(r.GetTasks())), Closing: r.GetPhase() == statev1.Phase_PHASE_CLOSED}
		for _, t := range r.GetTasks() {
			if t.GetSubmitted() {
				o.Submitted++
			} else {
				o.Missing = append(o.Missing, t.GetDevice())
			}
		}
		out.OpenRound = o
	}
	devices, err := savedDevices(stateDir, st)
	if err != nil {
		return nil, err
	}
	for _, d := range devices {
		out.Devices = append(out.Devices, &vigilv1.DeviceStatus{Id: d.GetId(), Region: d.GetRegion(),
			Enrolled: timestamppb.New(d.GetEnrolled().AsTime()), LastSeen: d.GetLastSeen()})
	}
	for _, r := range st.GetRemoved() {
		out.Removed = append(out.Removed, &vigilv1.RemovedDeviceStatus{Id: r.GetId(), Removed: r.GetAt(), Reason: r.GetReason()})
	}
	// The rounds are the status's only; a file that cannot be read leaves them out (the
	// coordinator logs why when it starts).
	rounds, _ := readRecentRounds(stateDir)
	for _, r := range rounds {
		out.RecentRounds = append(out.RecentRounds, roundStatus(r))
	}
	if len(rounds) > 0 {
		out.LastRound = roundStatus(rounds[0])
	}
	return out, nil
}
