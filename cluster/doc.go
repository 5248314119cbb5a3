// Package cluster keeps the coordinator tier's shared state in NATS JetStream: which updates each
// round accepted, exactly once across aggregation frontends, which coordinator leads the rounds,
// and, for a standby on another machine, a copy of the leader's state directory (Replica). With
// an object store (Config.Blobs) the updates' bytes are kept there, and the rounds' streams hold
// their hashes (blobs.go).
//
// The tier's connections are mutual TLS (tls.go): TLS 1.3 with the hybrid X25519MLKEM768 key
// exchange only, and on both sides a certificate of the organisation's CA naming a coordinator,
// the one identity every process of the tier (leader, standbys, frontends) presents. The
// embedded server (StartEmbeddedConfig with ServerTLS) also asks for its token, a second factor
// that is no longer visible on the network.
package cluster
