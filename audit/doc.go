// Package audit keeps an append-only, hash-chained log of trust decisions whose head is signed
// with ML-DSA-65 at regular checkpoints, and verifies such logs.
//
// A log is a file of JSON lines, one record per line. Every record carries its sequence number,
// the time it was written, the hash of the record before it and one payload: an authorization
// decision, a session event (challenge issued, passed, failed, session revoked, analyst feedback),
// a gap marker saying how many decisions could not be recorded, or a checkpoint. A record's hash is
// SHA-256 over a domain-separation prefix and the record's canonical JSON without the hash, so
// changing, removing or moving any record breaks the chain at that record. Checkpoints sign the
// sequence number and hash of the record before them, so a chain rewritten from some point on no
// longer matches the signature of the first checkpoint after that point.
//
// The encoding is canonical and decoded strictly: a line is accepted only if re-encoding the
// decoded record gives the same bytes, unknown fields are rejected and every size is capped (see
// limits.go). Verify walks a log and names the first record that is malformed, altered, out of
// order or missing, and every checkpoint whose signature does not verify under the given key.
//
// Log writes records; it is not safe for concurrent use and does no buffering between
// goroutines: callers that must never block (the session guard's Authorize) hand entries to a
// bounded queue drained by one goroutine that owns the Log.
package audit
