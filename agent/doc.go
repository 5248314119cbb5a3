// Package agent is Vigil's device agent: the one long-running process per device that protects
// real sessions. Applications on the device reach it over a local API, gRPC (service
// vigil.v1.Agent) and the same calls as HTTP/JSON, on 127.0.0.1 or a unix socket, authenticated
// by the install's secret; a page's capture script (vigil.js, served by the agent) holds only a
// session token that lets it send that session's events, read its status and ask Authorize.
//
// Behind the API sits the session guard (package guard) with the user models of package
// guard/behaviour. The agent enrols each user on the device from the first typing of their
// sessions, fits their personal keystroke model there, and keeps what it learnt (the enrolment's
// feature summaries, the guard's context baseline, a history of sessions) in a state file
// encrypted at rest with XChaCha20-Poly1305 under a device key (a 0600 file), so a restart keeps
// every user's baseline. The same file keeps the open sessions' standing and page tokens, so a
// session continues across a restart at the trust it had. Raw input events live in memory only for the window being scored or
// enrolled; nothing raw is written anywhere.
//
// Every decision and change of standing goes to the hash-chained, ML-DSA-65-signed audit log of
// package audit; the agent exports a signed head of it periodically (audit.Log.SignHead) so a
// log cut back to a checkpoint fails verification.
//
// Bad input gets a clear error (a gRPC status with a reason and the field, or an HTTP 4xx JSON
// error naming the field); a flood of events is refused per session with RESOURCE_EXHAUSTED and
// never delays Authorize, which reads the guard's published status without locks.
package agent
