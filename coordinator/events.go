package coordinator

import (
	"fmt"
	"time"
)

// EventKind says what happened in a round.
type EventKind int

// Round events, in the order a round produces them.
const (
	RoundStarted EventKind = iota
	UpdateAccepted
	UpdateRejected
	RoundCompleted
	RoundFailed
)

func (k EventKind) String() string {
	switch k {
	case RoundStarted:
		return "round started"
	case UpdateAccepted:
		return "update accepted"
	case UpdateRejected:
		return "update rejected"
	case RoundCompleted:
		return "round completed"
	case RoundFailed:
		return "round failed"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports progress of a round, for progress displays and tests.
type Event struct {
	Kind     EventKind
	Round    uint64
	Selected int // devices sampled for the round
	Accepted int // updates accepted so far
	Device   string
	// Model and Version name the version the round produced (RoundCompleted): of the global
	// model, or of the population model after a population round.
	Model   string
	Version uint64
	// Duration is the time from start to completion or failure.
	Duration time.Duration
	// Epsilon is the model's privacy loss so far at Delta (RoundCompleted; zero without
	// differential privacy).
	Epsilon, Delta float64
	// Err says why an update was rejected or a round failed.
	Err error
}
