package siem

import "errors"

// Errors callers branch on, to be checked with errors.Is.
var (
	// ErrConfig reports a configuration the package refuses; the message names the field.
	ErrConfig = errors.New("siem: invalid configuration")
	// ErrTooLarge reports an event above MaxEventBytes.
	ErrTooLarge = errors.New("siem: event too large")
	// ErrSpoolFull reports that the spool holds MaxSpoolBytes of unacknowledged events.
	ErrSpoolFull = errors.New("siem: spool full")
	// ErrCorrupt reports a spool directory whose files do not fit together.
	ErrCorrupt = errors.New("siem: spool corrupt")
	// ErrClosed reports use of a closed spool.
	ErrClosed = errors.New("siem: spool closed")
)

// DeliveryError is a collector's refusal of a batch: its HTTP status, or the syslog
// connection's failure, with the collector's words.
type DeliveryError struct {
	Sink   string // "hec" or "syslog"
	Status int    // HTTP status; 0 for a network or TLS failure
	Err    error
}

// Error implements error.
func (e *DeliveryError) Error() string {
	if e.Status != 0 {
		return "siem: " + e.Sink + ": collector answered " + httpStatus(e.Status) + ": " + e.Err.Error()
	}
	return "siem: " + e.Sink + ": " + e.Err.Error()
}

// Unwrap returns the underlying failure.
func (e *DeliveryError) Unwrap() error { return e.Err }

// errConnClosed reports a syslog receiver that closed the connection.
var errConnClosed = errors.New("the receiver closed the connection")
