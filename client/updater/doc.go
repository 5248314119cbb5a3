// Package updater keeps a device's global model up to date from its region's object store,
// safely.
//
// Poll reads the store through a release.Verifier: root of trust (walking rotations) -> the
// short-lived pointer -> the manifest it names -> every artifact's hash. It refuses rollback,
// expired metadata, documents that do not match one another, and signatures by keys the root
// does not trust (the errors wrap the release package's sentinels). A release that verifies is
// staged in the state directory as a candidate; it never replaces the running model directly.
//
// The candidate then runs in shadow: Observe scores each live feature window with the current
// model and the candidate side by side, and after Config.ShadowWindows windows the candidate is
// promoted if Config.Health accepts the comparison (by default: every candidate score finite and
// its mean reconstruction error at most 10% above the current model's) and rejected otherwise.
// A rejected release is never fetched again. The model it replaced is kept, and Rollback returns
// to it.
//
// A release is its version and its manifest: a staged or rejected release keeps a pointer to
// that same manifest from being fetched again, not one to another release of its version. When a
// new root comes, a candidate whose manifest no longer verifies under it (signed by keys a
// rotation retired, perhaps stolen ones) is dropped before it can be promoted, so the release
// the release team publishes under the new keys, of whatever version, is what the device takes.
//
// Once the manifest of the running release has expired and the store offers nothing newer, every
// Poll returns an error wrapping release.ErrStale (and release.ErrExpired): the model keeps
// running, but a store or a holder of the timestamp key that hides newer releases is reported
// within a manifest's lifetime, not when the root expires.
//
// # State directory
//
//	root.json                        newest trusted root (after rotations)
//	state.json                       current, previous and candidate versions with their
//	                                 directories and artifact hashes; the newest version
//	                                 accepted; rejected releases (version, manifest hash)
//	versions/<v>-<n>/manifest.json   the verified manifest envelope, for audit
//	versions/<v>-<n>/params.f64      parameters (little-endian float64)
//	versions/<v>-<n>/meta.json       model metadata (architecture, feature set)
//	versions/<v>-<n>/population.f64  the population model, for an updater that follows one
//	                                 (Config.Population; installed without a shadow comparison)
//
// Each install has a directory of its own (<n> is random; a state directory written by an older
// updater has versions/<v>), so that installing another release of the running version, after a
// rotation, never writes over the running one's files. A version's files are written into a
// temporary directory, synced, and renamed into place; only then is state.json replaced
// (temporary file, sync, rename, sync of the directory). That rename is the single switch: a
// crash at any point leaves the previous state.json, which names only complete versions, so the
// old model keeps running. Directories state.json does not name are removed on the next start.
//
// The first model a device ever gets is installed directly: there is nothing to shadow it
// against. So is the first release after a root rotation retired the key that signed the running
// model: the rotation reset the rollback floor (state.json's verified), and a model the root no
// longer vouches for is no yardstick. The floor rises only on an install or a promotion, never
// for a staged or rejected release.
//
// Each Poll has one deadline (Config.PollTimeout) for all its reads, which are bounded by the
// signed sizes and together by release.MaxFetchBytes (a manifest whose artifacts add up to more
// than release.MaxReleaseBytes is refused before a file is read); Run polls in its own
// goroutine, so live windows are scored while a poll waits on a slow region.
//
// A release whose files match no stored copy (tampered, or truncated in the store) is not
// rejected for good: every Poll reports it (release.ErrHashMismatch, Status.Refused) until a
// back-off ends (release.RefusedRetryMin, doubling up to release.RefusedRetryMax), and then
// reads it again, so that a repaired store is picked up and a damaged one is not downloaded at
// every poll.
package updater
