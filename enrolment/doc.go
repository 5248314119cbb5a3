// Package enrolment is Vigil's enrolment authority: the role that says which devices exist. It
// redeems one-time enrolment tokens, each bound to one device ID, for device records
// (release.DeviceRecord) that it signs with its own ML-DSA-65 key, the key of the root of
// trust's enrolment role. A record names the device, its region and the ML-DSA-65 key with
// which the device signs its updates.
//
// The authority is separate from the coordinator on purpose. The coordinator holds the CA that
// issues TLS certificates and sees every update; if it could also mint enrolment tokens, it
// could invent devices and fill a round's minimum number of participants with updates of its
// own, defeating the secure aggregation that the minimum protects. Trustees count an update only
// when it is signed by the key of a record that verifies under the root's enrolment role, so a
// coordinator without the enrolment key cannot make a device that counts.
//
// # Protocol
//
// A device generates its signing key and calls Register (gRPC service vigil.v1.Enrolment, over
// TLS that authenticates only the server: the device has no certificate yet) with its device
// ID, its token, its region, its public key and a proof of possession (SignRegistration). The
// authority checks the token without using it up, checks the proof, signs a record valid for
// RecordValidity, and only then redeems the token, so a refused request leaves the token
// usable and a token yields exactly one record. Every refusal is a gRPC status with an
// ErrorInfo reason.
//
// The device then enrols with the coordinator presenting the record and ProveRecord's
// signature over its certificate request; the coordinator verifies the record under its root
// of trust and the proof under the record's key (VerifyRecordProof) before it issues a TLS
// certificate and registers the device with the record's key.
//
// The authority's TLS certificate comes from its own CA (InitDir makes both), never the
// coordinator's, so that a coordinator cannot pass for the authority and take a device's token.
package enrolment
