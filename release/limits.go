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
	// MaxReleaseBytes bounds the sizes a manifest's artifacts add up to; a manifest declaring
	// more is malformed, so publishers cannot sign it and devices refuse it before they read a
	// file. A release is meta.json (at most 64 KiB), params.f64 (8 bytes a parameter: 10 KiB for
	// the default keystroke autoencoder, 32 MiB for the widest architecture models.Spec accepts)
	// and, for a population model, population.f64 and a params.f64 of 48 and 40 bytes a bucket
	// (270 and 225 KiB for the keystroke layout's 5618 buckets). The largest release the code
	// makes today is thus about 33 MiB; this is four times that, and above the 88 MiB of a
	// population model at models.MaxBuckets. Without it a thief of the release key could sign 64
	// files of 256 MiB (store.MaxObjectBytes) and have every device read 16 GiB per poll.
	MaxReleaseBytes = 128 << 20
	// MaxFetchBytes bounds what one Verifier.Fetch (one device poll) reads from the store, every
	// read together: roots, pointer, manifest, files, every stored version of a write-once
	// object tried before one verified, and the listings of those versions (each at most
	// store.MaxListingBytes, reserved before it is read and charged what it took). It is the largest release's files once and as much again
	// for the documents and for junk written under a key before the genuine version, which
	// would otherwise cost up to MaxObjectVersions times the signed size of every file.
	MaxFetchBytes = 2 * MaxReleaseBytes
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
	// RefusedRetryMin and RefusedRetryMax bound how soon a Verifier reads again the files of a
	// release that matched no stored copy (see Verifier.Refused): RefusedRetryMin after the
	// first refusal, twice as long after each next one, at most RefusedRetryMax. A store that
	// keeps serving bad files costs a device at most one release's download per back-off, four
	// a day once it reaches the cap.
	RefusedRetryMin = 10 * time.Minute
	RefusedRetryMax = 6 * time.Hour
	// maxRefused bounds the refused releases a Verifier remembers.
	maxRefused = 16
)
