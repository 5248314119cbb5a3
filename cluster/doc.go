// Package cluster keeps the coordinator tier's shared state in NATS JetStream: which updates each
// round accepted, exactly once across aggregation frontends, and which coordinator leads the
// rounds.
package cluster
