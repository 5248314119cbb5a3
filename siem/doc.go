// Package siem sends the session guard's decisions and changes of standing to a security
// team's tools: it maps them to OCSF 1.5 events (Authentication, class 3002, for how sessions
// and challenges went; Detection Finding, class 2004, for denied decisions and lost events),
// keeps them in a durable spool, and delivers them from the spool to a Splunk HEC-compatible
// collector over HTTPS and to a syslog receiver over TLS (RFC 5424 messages, RFC 5425
// framing).
//
// Delivery is at least once. The Exporter's Enqueue never blocks and never allocates: entries
// go to a bounded channel, and one goroutine encodes them and appends them to the spool with one
// fsync per batch. Each sender reads the spool from its own acknowledged offset, which it
// persists after every delivery the collector confirmed, so a collector outage or a restart of
// the process resends from the last acknowledged offset and loses nothing that reached the
// spool. What cannot reach the spool (the channel or the spool is full) is counted, and a
// Detection Finding saying how many events were lost is spooled in their place, as the audit
// log's gap records do. Events carry a stable metadata.uid, so a collector can drop the
// duplicates that at-least-once delivery implies; events replayed from a decision log carry the
// record's sequence number in metadata.sequence.
//
// The OCSF attributes the schema requires for each class, and the constraints it places on
// them, are listed in one place (schema.go); Validate checks an encoded event against them.
package siem
