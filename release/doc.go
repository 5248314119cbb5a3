// Package release is Vigil's software-update security layer: the signed documents that say which
// model a device may run, how they are verified, and how they are published to one object store
// per region.
//
// # Documents
//
// Four documents, each canonical JSON (see canonical.go) wrapped in a signed envelope:
//
//   - Root: the root of trust. It lists every trusted ML-DSA-65 key and, for each role (root,
//     release, timestamp), which keys hold it and how many of them must sign (threshold). It has a
//     version and an expiry. Devices ship with the first root pinned. A new root version n+1 must
//     be signed by a threshold of the root keys of version n and by a threshold of its own root
//     keys, and devices walk the versions one by one, as in The Update Framework (TUF). After a
//     rotation, documents signed only by keys that left the root are refused.
//   - Manifest (release role): one model version: name, version (strictly increasing), parent,
//     creation time, expiry, every artifact with size and SHA-256, and training facts (rounds,
//     devices, epsilon and delta spent, evaluation figures).
//   - Latest (timestamp role): a short-lived pointer to the newest version of a model and the
//     SHA-256 of its manifest. Its short expiry stops freeze attacks: a store (or an attacker in
//     front of it) that keeps serving an old pointer is refused once that pointer expires, and a
//     pointer valid for more than MaxPointerLifetime (7 days) is refused outright. A holder of
//     the timestamp key can still sign fresh pointers to the installed release; once its
//     manifest expires the device reports that (ErrStale) instead of "up to date".
//   - KeyEpoch (release role): approves the collective homomorphic-encryption public key of one key
//     epoch by its SHA-256 and size, so a device never encrypts under a key the root did not approve.
//
// # Envelope: DSSE, not a detached signature
//
// Every document travels in a DSSE envelope (github.com/secure-systems-lab/dsse, v1):
// {payload, payloadType, signatures[{keyid, sig}]}, where each signature is ML-DSA-65 over
// PAE(payloadType, payload) = "DSSEv1 <len(type)> <type> <len(payload)> <payload>". We chose it
// over a detached signature because:
//
//   - the verifier checks the signature over the exact payload bytes and only then parses them, so
//     no canonicalisation has to agree between signer and verifier for the signature to hold;
//   - payloadType is inside the signed bytes, so a signed root can never be replayed as a
//     manifest, nor a pointer as a key epoch (each document type has its own payloadType);
//   - one object carries the document and all of its signatures (threshold roots need several), so
//     a store write publishes both at once and a reader can never pair a document with the
//     signature of another, which two objects (document + .sig) would allow.
//
// The payload is canonical JSON all the same, and decoding is strict (unknown fields, duplicate
// keys, other spellings are refused), so one document has exactly one encoding and hashes of
// payloads (the Latest pointer's manifest hash) are stable.
//
// # Store layout
//
// Keys (see layout.go), in one store per region:
//
//	root/<version>.root.json                       root envelopes, written once
//	releases/<model>/<version>/manifest.json        manifest envelope, written once
//	releases/<model>/<version>/artifacts/<name>     artifact bytes, written once
//	releases/<model>/latest.json                    Latest envelope, replaced (written last)
//	keyepochs/<epoch>.json                          KeyEpoch envelope, written once
//	keyepochs/<epoch>/collective.pk                 collective HE public key bytes, written once
//
// Publishing writes artifacts, then the manifest, then the pointer, so a device that follows the
// pointer finds a complete release or the previous one, never half of one. Every write-once step
// is idempotent (an identical object already there counts as done), so a publication interrupted
// by a crash or an outage completes, exactly once, when it is retried.
//
// Regions are not trusted to hold only what the publisher wrote: anyone with the bucket's
// credentials can add versions (MinIO's object lock stops only deletion and overwriting of the
// locked version). So the Publisher verifies what a region already holds against the current
// root (PublisherConfig.Root): a pointer that does not verify or has expired is replaced, junk
// under a write-once key gets the genuine document added as a new locked version beside it, a
// different genuine document is ErrConflict; and it reads the pointer back, never reporting
// success (ErrUnverified) for a region whose pointer is not the one written or a verified newer
// one. Readers (Verifier.Fetch) read write-once objects version by version, oldest first, and
// take the first that verifies, so a later plain PUT, a delete marker or junk written first is
// skipped; every read is bounded by the signed metadata (MaxEnvelopeBytes for documents, the
// signed size for artifacts and the collective key) before a byte of the body is read, a
// release's artifacts together by MaxReleaseBytes, and all the reads of one Fetch by
// MaxFetchBytes. The oldest version is read and checked alone first; the others are read only
// when it is refused.
//
// # Verification
//
// A Verifier holds a device's trust state (newest trusted root, installed version, newest key
// epoch). The installed version is the rollback floor; the device raises it only for a release
// it verified and installed (SetInstalledManifest), never for one it refused, and a root update
// under which the installed manifest no longer verifies (its release key was rotated out) resets
// it to 0, as TUF does, so a release signed with stolen keys at version 2^64-1 cannot lock the
// device out of every genuine release after the rotation. Its methods are pure: bytes and the current time in, a verified document or an error
// out. Verifier.Fetch is the one I/O edge: it reads a store, walks new roots, then checks
// pointer -> manifest -> artifact hashes. Failures wrap the sentinel errors in errors.go
// (ErrRollback, ErrExpired, ErrUnknownKey, ErrThreshold, ErrBadSignature, ErrHashMismatch,
// ErrMixAndMatch, ...) and name the object and the document field at fault.
package release
