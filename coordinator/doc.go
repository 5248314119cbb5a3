// Package coordinator runs Vigil's federated rounds for a fleet of devices: it enrols devices,
// hands out tasks, collects and adds their updates through the round engine (package round),
// applies the server optimiser, and keeps every global model version in a store.
//
// The gRPC handlers only validate and pass messages to the engine under one lock; the loop in
// Run drives time (deadlines, quorum) and does the slow work of closing a round outside the lock.
package coordinator
