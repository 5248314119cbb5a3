package agent

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
)

// saveSessions returns the standing of every open session, for the state. It takes each
// session's lock, so it is never called under a.mu (SendEvents takes s.mu, then a.mu).
func (a *Agent) saveSessions() []SavedSession {
	a.smu.RLock()
	live := make([]*session, 0, len(a.sessions))
	for _, s := range a.sessions {
		live = append(live, s)
	}
	a.smu.RUnlock()
	out := make([]SavedSession, 0, len(live))
	for _, s := range live {
		sv, err := a.g.SaveSession(s.id)
		if err != nil {
			continue // ended meanwhile
		}
		s.mu.Lock()
		minTrust := s.minTrust
		s.mu.Unlock()
		out = append(out, SavedSession{Standing: sv, Token: s.token, Start: s.start, MinTrust: min(minTrust, sv.Trust),
			Allowed: s.allowed.Load(), Denied: s.denied.Load()})
	}
	slices.SortFunc(out, func(x, y SavedSession) int { return x.Start.Compare(y.Start) })
	return out
}

// restoreSessions gives the guard back the sessions open at the last save, with their trust,
// tier, challenge and revocation, and their page tokens; a session that started more than
// MaxRestoredSessionAge ago, or whose standing does not restore, is dropped into its user's
// history as ended by the shutdown, and a call naming it says why. Called by New only.
func (a *Agent) restoreSessions() {
	now := a.cfg.Clock()
	saved := a.state.Sessions
	a.state.Sessions = nil
	for i, ss := range saved {
		sv := ss.Standing
		why := ""
		switch age := now.Sub(ss.Start); {
		case age > MaxRestoredSessionAge:
			why = fmt.Sprintf("session %s was open when the agent stopped, but it started %v ago, beyond the %v a restart restores; start it again",
				quote(sv.ID), age.Round(time.Minute), MaxRestoredSessionAge)
		case a.unlistedSite(sv.ID):
			why = fmt.Sprintf("session %s was open when the agent stopped, but its site is no longer listed (--site)", quote(sv.ID))
		case i >= MaxSessions || sv.User == "" || ss.Token == "" || a.tokens[ss.Token] != nil || a.sessions[sv.ID] != nil:
			why = fmt.Sprintf("session %s was open when the agent stopped, but its saved state does not restore; start it again", quote(sv.ID))
		default:
			st, err := a.g.RestoreSession(sv, now)
			if err != nil {
				why = fmt.Sprintf("session %s was open when the agent stopped, but its saved state does not restore (%v); start it again", quote(sv.ID), err)
				break
			}
			_, rt := a.userState(sv.User)
			s := newSession(sv.ID, sv.User, ss.Token, rt, now, min(ss.MinTrust, st.Trust), a.windowSize(), a.siteAsk(sv.ID))
			s.start = ss.Start
			s.allowed.Store(ss.Allowed)
			s.denied.Store(ss.Denied)
			a.sessions[s.id], a.tokens[s.token] = s, s
			a.cfg.Logger.Info("session restored", "session", s.id, "user", s.user, "trust", st.Trust, "tier", st.Tier.String())
			continue
		}
		a.cfg.Logger.Warn("session not restored", "session", sv.ID, "user", sv.User, "why", why)
		a.dropped[sv.ID] = why
		if sv.User == "" {
			continue
		}
		us, _ := a.userState(sv.User)
		us.History = append(us.History, SessionSummary{Session: sv.ID, Start: ss.Start, End: a.state.SavedAt, FinalTrust: sv.Trust,
			MinTrust: min(ss.MinTrust, sv.Trust), Tier: sv.Tier.String(), Allowed: int(ss.Allowed), Denied: int(ss.Denied), EndedByShutdown: true})
		if n := len(us.History); n > MaxHistory {
			us.History = slices.Delete(us.History, 0, n-MaxHistory)
		}
		a.dirty = true
	}
}

// droppedError is the NotFound a call naming a session that a restart did not restore gets,
// or nil. a.smu must be held.
func (a *Agent) droppedError(id string) error {
	if why, ok := a.dropped[id]; ok {
		return apiError(codes.NotFound, ReasonSessionExpired, "session", why, 0)
	}
	return nil
}
