package siem

import "time"

// Every size cap and default of the package, in one place.
const (
	// MaxEventBytes bounds one encoded OCSF event, newline included. The audit format caps
	// every name and reason (audit.MaxRecordBytes), so real events stay far below it.
	MaxEventBytes = 64 << 10

	// DefaultQueueSize is the Exporter's channel in front of the spool: at 1 µs per Authorize
	// it covers a few milliseconds of a spool writer waiting on fsync.
	DefaultQueueSize = 4096
	// DefaultMaxSpoolBytes bounds the spool on disk. When unacknowledged events fill it, new
	// events are refused and counted (the oldest evidence is kept, and a gap finding follows).
	DefaultMaxSpoolBytes = 256 << 20
	// DefaultSegmentBytes is the size at which the spool starts a new segment file; a segment
	// is deleted once every sender has acknowledged all of it.
	DefaultSegmentBytes = 8 << 20
	// MinSegmentBytes is the smallest segment size Config accepts: room for a few events.
	MinSegmentBytes = 4 * MaxEventBytes

	// DefaultBatchEvents and DefaultBatchBytes bound one delivery to a collector.
	DefaultBatchEvents = 500
	DefaultBatchBytes  = 1 << 20

	// DefaultRetryMin and DefaultRetryMax bound the exponential backoff between failed
	// deliveries.
	DefaultRetryMin = 250 * time.Millisecond
	DefaultRetryMax = 30 * time.Second
	// DefaultTimeout bounds one HTTPS request or one TLS dial.
	DefaultTimeout = 15 * time.Second
	// DefaultSyslogConfirm is how long a syslog connection must stay up after a batch was
	// written before the batch counts as delivered (syslog has no acknowledgement).
	DefaultSyslogConfirm = time.Second

	// maxResponseBytes bounds how much of a collector's reply is read.
	maxResponseBytes = 64 << 10
)
