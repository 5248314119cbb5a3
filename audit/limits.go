package audit

// Every size cap of the log format, in one place. A record that exceeds one is rejected when it
// is written and when it is read.
const (
	// MaxRecordBytes bounds one encoded record, including its trailing newline.
	MaxRecordBytes = 64 << 10
	// MaxReasons bounds the reasons attached to one decision or session event.
	MaxReasons = 16
	// MaxTextBytes bounds one reason's text.
	MaxTextBytes = 1024
	// MaxNameBytes bounds identifiers: session, user, resource, outcome, tier, signal and event names.
	MaxNameBytes = 256
	// MaxSignatureBytes bounds a checkpoint signature (ML-DSA-87 signatures are 4,627 bytes).
	MaxSignatureBytes = 8 << 10
	// MaxTrust is the upper end of the trust scale; trust and required trust lie in [0, MaxTrust].
	MaxTrust = 100
)
