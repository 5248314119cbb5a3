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

// Refused reports a collector's answer that sending the same batch again will not change
// (401 or 403, a token it does not take; 400, 404, 413): a client error other than 408
// (timeout), 425 (too early) and 429 (too many requests). A running exporter still retries
// them, since an operator may fix the token while the spool waits; Deliver, which is asked to
// finish, stops.
func (e *DeliveryError) Refused() bool {
	switch {
	case e.Status/100 != 4:
		return false
	case e.Status == 408, e.Status == 425, e.Status == 429:
		return false
	}
	return true
}

// errConnClosed reports a syslog receiver that closed the connection.
var errConnClosed = errors.New("the receiver closed the connection")
