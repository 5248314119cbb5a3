package agent

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/vigilauth/vigil/agent/attest"
	"github.com/vigilauth/vigil/guard"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// lookup returns the live session id for the caller in ctx. A page's token acts only on the
// session it was issued for: one that ended since the token was checked is refused, and a
// later session of the same ID is not the token's.
func (a *Agent) lookup(ctx context.Context, id string) (*session, error) {
	a.smu.RLock()
	s := a.sessions[id]
	var dropped error
	if s == nil {
		dropped = a.droppedError(id)
	}
	a.smu.RUnlock()
	if own := pageSession(ctx); own != nil && own != s {
		return nil, errTokenEnded
	}
	if dropped != nil {
		return nil, dropped
	}
	if s == nil {
		return nil, errNoSession(id)
	}
	return s, nil
}

func errNoSession(id string) error {
	return apiError(codes.NotFound, ReasonUnknownSession, "session", "no open session "+quote(id), 0)
}

// live reports whether s is still the live session of its ID. A session removed from the live
// sessions is never put back, so s was live all along from an earlier check that it was to a
// later one: meanwhile the guard's session of its ID was s's.
func (a *Agent) live(s *session) bool {
	a.smu.RLock()
	defer a.smu.RUnlock()
	return a.sessions[s.id] == s
}

// remove takes s out of the live sessions and reports whether this call did: the one that did
// owns the end of s and alone closes it in the guard (the guard names sessions by ID only, so
// a second close would end a later session of the same ID). Once it returns, no batch of s's
// events is in the guard or will be (SendEvents checks s.ended under s.mu).
func (a *Agent) remove(s *session) bool {
	a.smu.Lock()
	if a.sessions[s.id] != s {
		a.smu.Unlock()
		return false
	}
	delete(a.sessions, s.id)
	delete(a.tokens, s.token)
	a.smu.Unlock()
	s.markEnded()
	return true
}

// withEnrolment adds the user's enrolment progress (published in rt) to a status.
func (a *Agent) withEnrolment(m *vigilv1.SessionStatus, rt *userRT) *vigilv1.SessionStatus {
	m.Enrolment = &vigilv1.EnrolmentProgress{WindowsNeeded: uint32(a.cfg.EnrolWindows), Enrolled: rt.enrolled.Load(),
		Windows: uint32(min(int(rt.windows.Load()), a.cfg.EnrolWindows))}
	return m
}

// StartSession implements vigilv1.AgentServer.
func (a *Agent) StartSession(ctx context.Context, req *vigilv1.StartSessionRequest) (*vigilv1.SessionStatus, error) {
	if c, _ := ctx.Value(callerKey{}).(caller); c.site != "" {
		return a.startSiteSession(c.site, req)
	}
	if err := allowed(ctx, req.Session, false); err != nil {
		return nil, err
	}
	for _, f := range []struct{ field, name string }{{"session", req.Session}, {"user", req.User}} {
		if strings.HasPrefix(f.name, sitePrefix) {
			return nil, badField(f.field, "names beginning %q are the web sites' own", sitePrefix)
		}
	}
	return a.startSession(req.Session, req.User, "")
}

// startSession opens session id for user, for the application or a page of site; the caller
// may start it.
func (a *Agent) startSession(id, user, site string) (*vigilv1.SessionStatus, error) {
	if err := checkName("session", id); err != nil {
		return nil, err
	}
	if err := checkName("user", user); err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	closed := a.closed
	_, rt := a.userState(user)
	a.mu.Unlock()
	if closed {
		return nil, apiError(codes.Unavailable, "SHUTTING_DOWN", "", "the agent is shutting down", time.Second)
	}
	a.touch(time.Now())
	now := a.cfg.Clock()
	st, err := a.g.OpenSession(id, user, now)
	if err != nil {
		return nil, guardError(err, "session")
	}
	s := newSession(id, user, token, rt, now, st.Trust, a.windowSize(), a.siteAsk(id))
	a.smu.Lock()
	var evicted *session
	if site != "" {
		evicted = a.evictSiteSessionLocked(site)
	}
	if len(a.sessions) >= MaxSessions {
		if evicted != nil {
			a.sessions[evicted.id], a.tokens[evicted.token] = evicted, evicted
		}
		a.smu.Unlock()
		a.g.CloseSession(s.id, now)
		return nil, apiError(codes.ResourceExhausted, ReasonTooMany, "", "the agent guards its maximum of "+strconv.Itoa(MaxSessions)+" live sessions; end some first", 0)
	}
	a.sessions[s.id], a.tokens[token] = s, s
	delete(a.dropped, s.id) // started again
	a.smu.Unlock()
	if evicted != nil {
		a.endEvicted(evicted)
	}
	select {
	case a.opened <- struct{}{}:
	default:
	}
	a.cfg.Logger.Info("session started", "session", s.id, "user", s.user, "trust", st.Trust)
	m := a.withEnrolment(statusMsg(st), rt)
	m.SessionToken = token
	return m, nil
}

// EndSession implements vigilv1.AgentServer.
func (a *Agent) EndSession(ctx context.Context, req *vigilv1.EndSessionRequest) (*vigilv1.SessionStatus, error) {
	// A site's page signs its user out itself: its server cannot reach the agent.
	if err := allowed(ctx, req.Session, strings.HasPrefix(req.Session, sitePrefix)); err != nil {
		return nil, err
	}
	s, err := a.lookup(ctx, req.Session)
	if err != nil {
		return nil, err
	}
	if !a.remove(s) {
		return nil, errNoSession(req.Session) // ended meanwhile, by another call
	}
	a.touch(time.Now())
	st, _ := a.g.Status(s.id)
	if err := a.g.CloseSession(s.id, a.cfg.Clock()); err != nil {
		a.cfg.Logger.Warn("ending a session the guard did not hold", "session", s.id, "err", err)
	}
	a.finish(s, st)
	a.saveSoon() // by Run's loop: the answer does not wait on the disk
	s.notify()
	m := a.withEnrolment(statusMsg(st), s.rt)
	m.Ended = true
	return m, nil
}

// finish adds a session that its caller removed (remove, evictSiteSessionLocked) and closed in
// the guard to its user's history.
func (a *Agent) finish(s *session, st guard.Status) {
	s.mu.Lock() // never under a.mu: SendEvents takes s.mu, then a.mu
	minTrust := s.minTrust
	s.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	us, _ := a.userState(s.user)
	us.History = append(us.History, SessionSummary{Session: s.id, Start: s.start, End: a.cfg.Clock(), FinalTrust: st.Trust,
		MinTrust: minTrust, Tier: st.Tier.String(), Allowed: int(s.allowed.Load()), Denied: int(s.denied.Load())})
	if n := len(us.History); n > MaxHistory {
		us.History = slices.Delete(us.History, 0, n-MaxHistory)
	}
	a.dirty = true
}

// SendEvents implements vigilv1.AgentServer. The batch is checked field by field first (a bad
// field refuses the whole batch), then applied in time order; events the guard refuses (out of
// order, say) are counted and the rest applied.
func (a *Agent) SendEvents(ctx context.Context, req *vigilv1.SendEventsRequest) (*vigilv1.SendEventsResponse, error) {
	if err := allowed(ctx, req.Session, true); err != nil {
		return nil, err
	}
	s, err := a.lookup(ctx, req.Session)
	if err != nil {
		return nil, err
	}
	n := len(req.Keys) + len(req.Pointer)
	if n > MaxBatchEvents {
		return nil, badField("keys", "%d events in one batch, limit %d", n, MaxBatchEvents)
	}
	evs, err := convertBatch(req)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(evs, func(x, y event) int { return x.at.Compare(y.at) })

	now := time.Now()
	a.touch(now)
	enrolled, mouseEnrolled := s.rt.enrolled.Load(), s.rt.mouseEnrolled.Load()
	s.mu.Lock()
	if s.ended { // by a call since the lookup: the guard's session of this ID is, or will be, another's
		s.mu.Unlock()
		if pageSession(ctx) != nil {
			return nil, errTokenEnded
		}
		return nil, errNoSession(req.Session)
	}
	ok, wait := s.take(n, now)
	if !ok {
		s.mu.Unlock()
		return nil, apiError(codes.ResourceExhausted, ReasonRateLimited, "", "too many events for this session: at most "+
			strconv.Itoa(EventsPerSecond)+" per second", wait)
	}
	resp := &vigilv1.SendEventsResponse{}
	var st guard.Status
	// Reused from the session's last batch: nothing below keeps them.
	keys, accepted, mice := s.keys[:0], s.accepted[:0], s.mice[:0]
	for _, ev := range evs {
		var err error
		switch {
		case ev.key != nil:
			st, err = a.g.ObserveKeystroke(*ev.key)
			if err == nil {
				accepted = append(accepted, *ev.key)
				if st.Tier == guard.TierMonitor {
					keys = append(keys, *ev.key)
				}
			}
		case ev.mouse != nil:
			st, err = a.g.ObserveMouse(*ev.mouse)
			if err == nil && !mouseEnrolled && st.Tier == guard.TierMonitor {
				mice = append(mice, *ev.mouse)
			}
		default:
			st, err = a.g.ObserveContext(*ev.cx)
		}
		if err != nil {
			if resp.Rejected == 0 {
				resp.RejectedReason = ev.field() + ": " + err.Error()
			}
			resp.Rejected++
			continue
		}
		resp.Accepted++
	}
	if len(evs) == 0 || resp.Accepted == 0 {
		if st, err = a.g.Status(s.id); err != nil {
			s.mu.Unlock()
			return nil, guardError(err, "session")
		}
	}
	s.minTrust = min(s.minTrust, st.Trust)
	// A change of tier (a challenge, a termination) is saved at once, not within SaveInterval:
	// an agent killed before then would restore the session as it stood before it.
	changed := st.Tier != s.tier || st.Revoked != s.revoked
	s.tier, s.revoked = st.Tier, st.Revoked
	if len(accepted) > 0 && enrolled {
		// The user has a model: a verdict may teach it these windows, and while the session is
		// in good standing they are the user's own, on which a candidate release is judged.
		if k := s.keep(accepted); k > 0 && st.Tier == guard.TierMonitor && a.shadowing.Load() {
			for _, w := range s.windows.Windows[len(s.windows.Windows)-k:] {
				a.shadowWindow(s.rt, w)
			}
		}
	}
	if len(keys) > 0 && !enrolled {
		a.mu.Lock()
		a.enrolKeystrokes(s, keys)
		a.mu.Unlock()
	}
	if len(mice) > 0 {
		a.enrolMouse(s, mice)
	}
	s.keys, s.accepted, s.mice = keys, accepted, mice
	s.mu.Unlock()
	if changed {
		a.saveSoon()
	}
	if resp.Accepted > 0 {
		s.notify()
	}
	resp.Status = a.withEnrolment(statusMsg(st), s.rt)
	return resp, nil
}

// Authorize implements vigilv1.AgentServer. It is the guard's Authorize: no lock, no wait.
func (a *Agent) Authorize(ctx context.Context, req *vigilv1.AuthorizeRequest) (*vigilv1.AuthorizeResponse, error) {
	if err := allowed(ctx, req.Session, true); err != nil {
		return nil, err
	}
	if len(req.Resource) > guard.MaxResourceBytes {
		return nil, badField("resource", "%d bytes, limit %d", len(req.Resource), guard.MaxResourceBytes)
	}
	s, err := a.lookup(ctx, req.Session)
	own := pageSession(ctx)
	if own != nil && s == nil {
		return nil, err // the token's session ended
	}
	if s != nil && isPage(ctx) {
		if ok, wait := s.ask.take(time.Now()); !ok {
			return nil, apiError(codes.ResourceExhausted, ReasonRateLimited, "", "too many Authorize calls from this session's page (a site's pages together): at most "+
				strconv.Itoa(PageAuthorizePerSecond)+" per second", wait)
		}
	}
	var site *attest.Signer
	if req.Nonce != "" {
		var err error
		if site, err = a.siteSigner(req.Session, req.Nonce); err != nil {
			return nil, err
		}
	}
	d := a.g.Authorize(ctx, req.Session, req.Resource)
	if own != nil && !a.live(own) {
		// Ended since the lookup: the decision may be a later session's of the same ID.
		return nil, errTokenEnded
	}
	if s != nil {
		if d.Allow {
			s.allowed.Add(1)
		} else {
			s.denied.Add(1)
		}
	}
	m := decisionMsg(&d)
	if site != nil {
		var err error
		if m.Attestation, err = a.attestation(site, s, req, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// AuthorizeStream implements vigilv1.AgentServer: Authorize for each request of the stream, in
// order; one it refuses ends the stream with its error. The stream's credential is checked
// again for every request, as a unary call's would be: a page's token stops working when its
// session ends, even on a stream opened before.
func (a *Agent) AuthorizeStream(stream vigilv1.Agent_AuthorizeStreamServer) error {
	var req vigilv1.AuthorizeRequest // reused: Recv would allocate one per request
	for {
		if err := stream.RecvMsg(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		ctx, err := a.grpcCaller(stream.Context())
		if err != nil {
			return err
		}
		resp, err := a.Authorize(ctx, &req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}

// AnswerChallenge implements vigilv1.AgentServer. Only the application (install secret) may
// report an answer: a page could otherwise pass its own challenge.
func (a *Agent) AnswerChallenge(ctx context.Context, req *vigilv1.AnswerChallengeRequest) (*vigilv1.SessionStatus, error) {
	if err := allowed(ctx, req.Session, false); err != nil {
		return nil, err
	}
	s, err := a.lookup(ctx, req.Session)
	if err != nil {
		return nil, err
	}
	st, err := a.g.AnswerChallenge(s.id, req.ChallengeId, req.Passed, a.cfg.Clock())
	if err != nil {
		return nil, guardError(err, "challenge_id")
	}
	if req.Passed {
		a.learn(s)
	}
	a.saveSoon()
	s.notify()
	return a.withEnrolment(statusMsg(st), s.rt), nil
}

// Feedback implements vigilv1.AgentServer.
func (a *Agent) Feedback(ctx context.Context, req *vigilv1.FeedbackRequest) (*vigilv1.SessionStatus, error) {
	if err := allowed(ctx, req.Session, false); err != nil {
		return nil, err
	}
	var v guard.Verdict
	switch req.Verdict {
	case "genuine":
		v = guard.VerdictGenuine
	case "compromised":
		v = guard.VerdictCompromised
	default:
		return nil, badField("verdict", "%q, want genuine or compromised", req.Verdict)
	}
	s, err := a.lookup(ctx, req.Session)
	if err != nil {
		return nil, err
	}
	st, err := a.g.Feedback(s.id, v, a.cfg.Clock())
	if err != nil {
		return nil, guardError(err, "verdict")
	}
	if v == guard.VerdictGenuine {
		a.learn(s)
	} else {
		s.takeWindows() // never learnt from
	}
	a.saveSoon() // a revocation must survive the agent's next crash
	s.notify()
	return a.withEnrolment(statusMsg(st), s.rt), nil
}
