package release

import "time"

// Every size and count bound of the package, in one place. They are far above what a real
// release needs and low enough that a hostile store cannot make a device allocate much before
// a signature has been checked.
const (
	// MaxEnvelopeBytes bounds one encoded envelope (root, manifest, pointer, key epoch).
	MaxEnvelopeBytes = 1 << 20
	// MaxSignatures bounds the signatures in one envelope.
	MaxSignatures = 16
	// MaxPayloadTypeLen bounds an envelope's payloadType.
	MaxPayloadTypeLen = 128
	// MaxRootKeys bounds the keys one root document lists.
	MaxRootKeys = 32
	// MaxArtifacts bounds the artifacts of one manifest.
	MaxArtifacts = 64
	// MaxNameLen bounds model names, artifact names, parameter IDs and evaluation figure names.
	MaxNameLen = 64
	// MaxEvalFigures bounds the evaluation figures of one manifest.
	MaxEvalFigures = 64
	// MaxRootSteps bounds how many root versions one Fetch walks, so a store cannot keep a device
	// busy forever; a device further behind catches up over several polls.
	MaxRootSteps = 64
	// MaxObjectVersions bounds how many stored versions of one write-once object a reader tries
	// (oldest first) before giving up: junk written under a key by someone holding the bucket's
	// credentials is skipped, the genuine version read.
	MaxObjectVersions = 8
	// MaxPointerLifetime bounds how far ahead of the device's clock a Latest pointer may expire.
	// Publishers sign pointers for hours (OutboxConfig.LatestExpiry and `vigil release sign`
	// default to 6h) and re-sign them long before they expire. A pointer valid for years is what
	// a thief of the timestamp key would write once to hold devices on an old release until
	// their root expires, so devices refuse it (ErrLifetime).
	MaxPointerLifetime = 7 * 24 * time.Hour
)
