// Package client is Vigil's device agent for federated learning: it enrols with the
// coordinator, takes the tasks it is given, fine-tunes the global model on the device's own
// behaviour, and sends back only a protected update of the model. Raw behaviour and features
// never leave the device.
package client
