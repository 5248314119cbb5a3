package guard

import "errors"

// Errors callers branch on, checked with errors.Is; the returned errors wrap them with details.
var (
	// ErrInvalidEvent: an event has a missing field or an impossible value.
	ErrInvalidEvent = errors.New("guard: invalid event")
	// ErrBadTime: an event's timestamp is absurd (zero, far past, in the future).
	ErrBadTime = errors.New("guard: absurd timestamp")
	// ErrOutOfOrder: an event is older than one the session already processed.
	ErrOutOfOrder = errors.New("guard: event out of order")
	// ErrUnknownSession: no open session has this ID.
	ErrUnknownSession = errors.New("guard: unknown session")
	// ErrSessionExists: OpenSession with an ID already in use.
	ErrSessionExists = errors.New("guard: session already open")
	// ErrRevoked: the session was terminated; it accepts no more events.
	ErrRevoked = errors.New("guard: session revoked")
	// ErrNoChallenge: an answer for a challenge that is not open (never issued, already
	// answered, or replaced by a stronger one).
	ErrNoChallenge = errors.New("guard: no such open challenge")
	// ErrPolicy: a policy file does not parse.
	ErrPolicy = errors.New("guard: invalid policy")
	// ErrConfig: a Config value is out of range.
	ErrConfig = errors.New("guard: invalid config")
	// ErrNotScored is returned by a BehaviourScorer that has no opinion on a window (for
	// example while the user's model is still enrolling); the guard treats it as no evidence.
	ErrNotScored = errors.New("guard: window not scored")
)
