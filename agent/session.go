package agent

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models"
)

// session is one live session as the agent sees it: its token, its rate limit and the
// watchers of its status. The guard keeps its trust.
type session struct {
	id, user, token string
	start           time.Time
	rt              *userRT // the user's published enrolment progress

	mu       sync.Mutex // serialises the session's event batches and guards what follows
	tokens   float64    // event allowance (token bucket)
	refilled time.Time
	minTrust float64
	watchers int
	changed  chan struct{} // closed and replaced on every change of status

	allowed, denied atomic.Int64

	// The tier and revocation as of the last batch, to save the state at once when they
	// change. Under mu.
	tier    guard.Tier
	revoked bool
	// ended is set, under mu, once the session is out of the agent's live sessions and before
	// it is closed in the guard: a batch that finds it set must not reach the guard, whose
	// session of this ID may be a later one.
	ended bool

	// ask is the page's Authorize allowance (a bucket of its own lock: Authorize never waits
	// for a batch of events under mu): the session's own, or for a listed site's session the
	// site's, which all its sessions share, so that a page ending and starting its session
	// again gets no fresh allowance.
	ask *bucket

	// enr cuts the session's typing into its user's enrolment windows, before the user has a
	// model; recent into the windows a verdict may teach the model after. Both under s.mu.
	enr     *enroller
	recent  *enroller
	windows models.Enrolment
	// mouse cuts the session's pointer events into its user's mouse enrolment, until the user
	// has a mouse model; nil until the first pointer event. Under s.mu.
	mouse *mouseEnroller
	// A batch's accepted keystrokes, those in good standing and its pointer events in good
	// standing, kept to be reused by the next batch. Under s.mu.
	accepted, keys []guard.KeystrokeEvent
	mice           []guard.MouseEvent
}

// newSession returns a live session; ask is its page's Authorize allowance, nil for one of its
// own.
func newSession(id, user, token string, rt *userRT, now time.Time, trust float64, size int, ask *bucket) *session {
	if ask == nil {
		ask = newBucket(PageAuthorizePerSecond, PageAuthorizeBurst, now)
	}
	return &session{id: id, user: user, token: token, rt: rt, start: now, tokens: EventBurst, refilled: now, ask: ask,
		minTrust: trust, changed: make(chan struct{}), enr: newEnroller(size, true), recent: newEnroller(size, false)}
}

// bucket is a token bucket: an allowance of calls that refills at rate a second up to burst.
type bucket struct {
	mu          sync.Mutex
	rate, burst float64
	tokens      float64
	filled      time.Time
}

func newBucket(rate, burst float64, now time.Time) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, filled: now}
}

// take spends one call of the allowance and reports whether there was one, and if not how
// long until there will be.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := now.Sub(b.filled); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.filled = now
	}
	if b.tokens < 1 {
		return false, max(time.Duration((1-b.tokens)/b.rate*float64(time.Second)), time.Millisecond)
	}
	b.tokens--
	return true, 0
}

// take spends n events of the session's allowance and reports whether there were enough, and
// if not how long until there will be. s.mu must be held.
func (s *session) take(n int, now time.Time) (bool, time.Duration) {
	if d := now.Sub(s.refilled); d > 0 {
		s.tokens = min(EventBurst, s.tokens+d.Seconds()*EventsPerSecond)
		s.refilled = now
	}
	if float64(n) > s.tokens {
		wait := time.Duration((float64(n) - s.tokens) / EventsPerSecond * float64(time.Second))
		return false, max(wait, time.Millisecond)
	}
	s.tokens -= float64(n)
	return true, 0
}

// markEnded records that s has left the live sessions; it waits for a batch of s's events in
// progress.
func (s *session) markEnded() {
	s.mu.Lock()
	s.ended = true
	s.mu.Unlock()
}

// notify wakes the session's watchers.
func (s *session) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// wait returns a channel closed at the next change.
func (s *session) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// keep adds keystrokes of the session to the windows a verdict may teach, and returns how many
// windows they completed. s.mu must be held.
func (s *session) keep(evs []guard.KeystrokeEvent) int {
	before := len(s.windows.Windows)
	for _, ev := range evs {
		s.recent.push(ev, &s.windows)
	}
	added := len(s.windows.Windows) - before
	if n := len(s.windows.Windows); n > MaxSessionWindows {
		s.windows.Windows = slices.Delete(s.windows.Windows, 0, n-MaxSessionWindows)
	}
	return min(added, len(s.windows.Windows))
}

// takeWindows returns the windows kept and forgets them: a verdict teaches each once.
func (s *session) takeWindows() []models.Window {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.windows.Windows
	s.windows.Windows = nil
	return w
}
