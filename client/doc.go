// Package client is Vigil's device agent for federated learning: it registers with the
// enrolment authority for a signed device record naming its own ML-DSA-65 signing key, enrols
// with the coordinator presenting that record, takes the tasks it is given, fine-tunes the global
// model on the device's own behaviour, and sends back only a protected update of the model,
// encrypted and signed with its enrolled key. Raw behaviour and features never leave the device.
package client
