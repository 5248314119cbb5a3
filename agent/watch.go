package agent

import (
	"context"
	"time"

	"google.golang.org/grpc/codes"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// WatchSession implements vigilv1.AgentServer: the current status at once, then each change,
// until the session ends or the caller goes.
func (a *Agent) WatchSession(req *vigilv1.WatchSessionRequest, stream vigilv1.Agent_WatchSessionServer) error {
	return a.watch(stream.Context(), req.Session, stream.Send)
}

func (a *Agent) watch(ctx context.Context, id string, send func(*vigilv1.SessionStatus) error) error {
	if err := allowed(ctx, id, true); err != nil {
		return err
	}
	s, err := a.lookup(ctx, id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.watchers >= MaxWatchers {
		s.mu.Unlock()
		return apiError(codes.ResourceExhausted, ReasonRateLimited, "", "too many watchers of this session", 0)
	}
	s.watchers++
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.watchers--; s.mu.Unlock() }()
	var last *vigilv1.SessionStatus
	tick := time.NewTicker(watchPoll)
	defer tick.Stop()
	for {
		changed := s.wait()
		st, err := a.g.Status(id)
		if err != nil || !a.live(s) { // ended (the status read may be a later session's)
			return nil
		}
		m := a.withEnrolment(statusMsg(st), s.rt)
		if last == nil || m.UpdatedUnixMs != last.UpdatedUnixMs || m.Trust != last.Trust || m.Tier != last.Tier ||
			m.Enrolment.Windows != last.Enrolment.Windows || m.Enrolment.Enrolled != last.Enrolment.Enrolled {
			if err := send(m); err != nil {
				return err
			}
			last = m
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.done:
			return nil
		case <-changed:
		case <-tick.C:
		}
	}
}
