// Package pki is Vigil's identity and transport security: the deployment's own certificate
// authority, device certificates issued at enrolment, one-time enrolment tokens, revocation,
// mutual TLS configurations and the gRPC interceptors that turn a verified TLS peer into an
// Identity on every call.
//
// # Identities
//
// Every certificate names exactly one Identity in one URI subject alternative name,
//
//	spiffe://vigil/<role>/<id>
//
// where role is device, coordinator, trustee or enrolment (the enrolment authority) and id is a Vigil identifier (1 to 64 characters
// of [A-Za-z0-9._-]). The form is a SPIFFE ID, so gRPC and other tooling recognise it, and the
// role is part of the name, so a trustee's certificate can never pass for a device's. Device
// certificates carry only the client-auth extended key usage; coordinator and trustee
// certificates carry server and client auth (the coordinator is a client of the trustees) and
// DNS/IP names for ordinary host-name verification.
//
// The CA never copies a name from a certificate request: the identity of a device certificate is
// the device ID its enrolment established (in Vigil, the device record signed by the enrolment
// authority), and the request only proves possession of the key.
//
// # Transport
//
// ServerTLS and ClientTLS allow only TLS 1.3 and only the hybrid post-quantum key exchange
// X25519MLKEM768 (X25519 combined with ML-KEM-768, FIPS 203). There is no classical fallback:
// every peer is our own Go binary, and a fallback would let an active attacker strip the
// post-quantum half of the exchange.
//
// Certificate signatures stay classical (ECDSA P-256). This is the state of the art that
// browsers and large TLS deployments have chosen too, for two reasons. Confidentiality must
// resist a quantum computer that does not exist yet, because traffic recorded today can be
// decrypted later ("harvest now, decrypt later"); the key exchange protects against that.
// Authentication only has to hold while the handshake runs: a signature forged in the future
// cannot reach back into a finished handshake. And ML-DSA certificates are not usable yet:
// Go's crypto/x509 and crypto/tls do not support them, and the TLS signature-scheme code points
// for ML-DSA are still being standardised. When they are, the CA key type is the only thing to
// change here. P-256 rather than Ed25519 because device keys may live in a TPM or a secure
// enclave, which support P-256 and not Ed25519.
//
// # Revocation and enrolment
//
// Revocations is a persisted list of revoked identities and certificate serial numbers checked on
// every RPC, not only at the handshake, so a revoked device is refused on its next call even over a
// connection it opened before. Revoking an identity refuses every certificate of that identity
// whose NotBefore is not after the revocation, and every enrolment authorised before it
// (Enroller.Enroll); enrolling again takes a device record issued afterwards, and certificates
// issued after a revocation start after it (CertSpec.StartAfter).
//
// Tokens is the store of one-time enrolment tokens, each bound to the one device ID it may enrol
// and kept only as a SHA-256 hash. The enrolment authority (package enrolment) redeems them; the
// coordinator, which holds the CA, never sees one, so it cannot mint identities for itself.
//
// Both stores are small files written atomically under an advisory file lock, so that the
// `vigil enrol token` and `vigil pki revoke` commands can issue tokens and revoke devices while
// the servers run: the authority reads the token file on each registration, and the
// coordinator's first call after RevocationRecheck has passed looks at the revocation file again. A revocation list that changed and cannot be
// read, or that disappeared, refuses every call (fail closed) until it is repaired.
//
// # Wiring
//
// A server: credentials.NewTLS(ServerTLS(cert, ca.Pool())) as grpc.Creds, Guard.ServerOptions,
// the message size limits; handlers call RequireDevice (or Require) with the ID the request
// claims, and Enroll, once it has checked the device's authorisation, calls Enroller.Enroll and
// returns StatusError of its error. A client:
// credentials.NewTLS(ClientTLS(cert or nil, roots, Coordinator("") or Trustee(id))). The package
// example runs the whole flow.
package pki
