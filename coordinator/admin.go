package coordinator

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// AdminConfig configures the operator's API (Coordinator.RegisterAdmin).
type AdminConfig struct {
	// Regions, if set, reports how publishing to each release region stands.
	Regions func() []*vigilv1.RegionStatus
	// Version is the binary's build, reported by Status.
	Version string
}

// adminServer serves vigilv1.AdminServer for a Coordinator. Serve it only behind a guard that
// admits operator certificates: it can stop rounds and remove devices.
type adminServer struct {
	vigilv1.UnimplementedAdminServer
	c   *Coordinator
	cfg AdminConfig
}

// RegisterAdmin serves the operator's API on s, which must admit operators only.
func (c *Coordinator) RegisterAdmin(s *grpc.Server, cfg AdminConfig) {
	vigilv1.RegisterAdminServer(s, &adminServer{c: c, cfg: cfg})
}

// Status implements vigilv1.AdminServer.
func (a *adminServer) Status(ctx context.Context, _ *vigilv1.StatusRequest) (*vigilv1.StatusResponse, error) {
	st := a.c.Status()
	st.Version = a.cfg.Version
	if a.cfg.Regions != nil {
		st.Regions = a.cfg.Regions()
	}
	return st, nil
}

// PauseRounds implements vigilv1.AdminServer.
func (a *adminServer) PauseRounds(ctx context.Context, _ *vigilv1.PauseRoundsRequest) (*vigilv1.PauseRoundsResponse, error) {
	if err := a.c.Pause(); err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &vigilv1.PauseRoundsResponse{}, nil
}

// ResumeRounds implements vigilv1.AdminServer.
func (a *adminServer) ResumeRounds(ctx context.Context, _ *vigilv1.ResumeRoundsRequest) (*vigilv1.ResumeRoundsResponse, error) {
	err := a.c.Resume()
	if errors.Is(err, ErrNotPaused) {
		// As AbortRound without an open round: nothing was done, and the operator is told why.
		return nil, status.Error(codes.FailedPrecondition, "rounds are not paused; nothing changed (resume only lifts a pause: rounds already start as --round-interval and the failure back-off allow; `vigil status` says when the next may)")
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &vigilv1.ResumeRoundsResponse{}, nil
}

// AbortRound implements vigilv1.AdminServer.
func (a *adminServer) AbortRound(ctx context.Context, req *vigilv1.AbortRoundRequest) (*vigilv1.AbortRoundResponse, error) {
	r, err := a.c.Abort(req.GetReason())
	if errors.Is(err, ErrNoOpenRound) {
		return nil, status.Error(codes.FailedPrecondition, "no round is collecting updates")
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &vigilv1.AbortRoundResponse{Round: r}, nil
}

// RemoveDevice implements vigilv1.AdminServer.
func (a *adminServer) RemoveDevice(ctx context.Context, req *vigilv1.RemoveDeviceRequest) (*vigilv1.RemoveDeviceResponse, error) {
	if err := vigilv1.ValidID("device_id", req.GetDeviceId()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	err := a.c.RemoveDevice(ctx, req.GetDeviceId(), req.GetReason())
	if errors.Is(err, ErrUnknownDevice) {
		return nil, status.Error(codes.NotFound, err.Error())
	}
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &vigilv1.RemoveDeviceResponse{}, nil
}

// Status describes the run for the operator: rounds, devices, the trustees at the last check
// and the privacy budget. Regions and the version are the admin server's to add.
func (c *Coordinator) Status() *vigilv1.StatusResponse {
	eps, delta := c.spent()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &vigilv1.StatusResponse{
		Model: c.cfg.ModelName, GlobalVersion: c.global.Meta.Version, Paused: c.paused,
		CompletedRounds: uint32(c.completed), LastRoundStarted: c.engine.LastRound(),
		PendingEnrolments: uint32(c.pendingLocked(c.cfg.Now())),
	}
	if !c.notBefore.IsZero() {
		st.NextRoundNotBefore = timestamppb.New(c.notBefore)
	}
	if rs, ok := c.engine.State(); ok {
		o := &vigilv1.OpenRoundStatus{Round: rs.Round, BaseVersion: rs.BaseVersion, Started: timestamppb.New(rs.Started),
			Deadline: timestamppb.New(rs.Deadline), Selected: uint32(len(rs.Tasks)), Closing: c.closing}
		for _, t := range rs.Tasks {
			if t.Submitted {
				o.Submitted++
			} else {
				o.Missing = append(o.Missing, t.Device)
			}
		}
		sort.Strings(o.Missing)
		st.OpenRound = o
	}
	if l := c.lastRound; l.Round != 0 {
		st.LastRound = roundStatus(l)
	}
	st.RecentRounds = c.recentRoundsStatusLocked()
	for id, d := range c.devices {
		ds := &vigilv1.DeviceStatus{Id: id, Region: d.region, Enrolled: timestamppb.New(d.enrolled)}
		if t, ok := c.lastSeen[id]; ok {
			ds.LastSeen = timestamppb.New(t)
		}
		st.Devices = append(st.Devices, ds)
	}
	slices.SortFunc(st.Devices, func(a, b *vigilv1.DeviceStatus) int { return strings.Compare(a.GetId(), b.GetId()) })
	st.Installed = c.installedStatusLocked(st.Devices)
	for id, r := range c.removed {
		st.Removed = append(st.Removed, &vigilv1.RemovedDeviceStatus{Id: id, Removed: timestamppb.New(r.at), Reason: r.reason})
	}
	slices.SortFunc(st.Removed, func(a, b *vigilv1.RemovedDeviceStatus) int { return strings.Compare(a.GetId(), b.GetId()) })
	for _, h := range c.trustees {
		st.Trustees = append(st.Trustees, &vigilv1.TrusteeStatus{Id: h.ID, Reachable: h.Reachable, LastRound: h.LastRound,
			LatencySeconds: h.Latency.Seconds(), Problem: h.Problem})
	}
	p := &vigilv1.PrivacyStatus{DifferentialPrivacy: c.cfg.Privacy.Enabled(), EpsilonSpent: eps, Delta: delta}
	if p.DifferentialPrivacy {
		p.EpsilonBudget = c.cfg.Privacy.Budget.Epsilon
		p.EpsilonRemaining = max(0, p.EpsilonBudget-eps)
	}
	st.Privacy = p
	return st
}
