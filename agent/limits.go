package agent

import "time"

// Every size cap and rate bound of the agent's API, in one place.
const (
	// MaxBodyBytes bounds an HTTP request body.
	MaxBodyBytes = 1 << 20
	// MaxBatchEvents bounds the keys plus pointer samples of one SendEvents call.
	MaxBatchEvents = 4096
	// EventsPerSecond and EventBurst bound one session's events: far above real typing and a
	// pointer sampled at 120 Hz, far below what would let one page starve the agent.
	EventsPerSecond = 2000
	EventBurst      = 8000
	// PageAuthorizePerSecond and PageAuthorizeBurst bound the Authorize calls of one session's
	// page (its session token), and of a listed site's pages together, whose sessions share one
	// allowance (a page may end its session and start another): a page asks before its user's
	// actions, and a script in it asking in a loop would otherwise fill the audit log with
	// decisions. The application's calls (install secret) are not bounded.
	PageAuthorizePerSecond = 20
	PageAuthorizeBurst     = 100
	// SiteStartsPerSecond and SiteStartBurst bound the sessions a listed site's pages start
	// (each start and end is an audit record): a page starts one as its user signs in.
	SiteStartsPerSecond = 1
	SiteStartBurst      = 64
	// MaxSessions bounds the live sessions of one agent.
	MaxSessions = 1024
	// MaxSessionWindows bounds the windows of a session kept for a verdict (a passed challenge,
	// an analyst's "genuine"), as the scorer keeps about as many; MaxLearntWindows the windows
	// kept per user that verdicts taught the model, replayed into it after a refit.
	MaxSessionWindows = 32
	MaxLearntWindows  = 256
	// MaxHistory bounds the session summaries kept per user.
	MaxHistory = 50
	// MaxRestoredSessionAge bounds the age (since StartSession) of a session a restart of the
	// agent restores; an older one is dropped into its user's history. The guard has no idle
	// timeout of its own, so this is the bound.
	MaxRestoredSessionAge = 12 * time.Hour
	// MaxStateBytes bounds the encrypted state file.
	MaxStateBytes = 256 << 20
	// MaxWatchers bounds concurrent WatchSession streams per session.
	MaxWatchers = 8
	// watchPoll is how often a watcher looks for a change the agent did not announce
	// (a challenge expiring on the guard's Tick).
	watchPoll = time.Second
)
