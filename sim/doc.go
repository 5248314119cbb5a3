// Package sim runs a whole Vigil organisation in one process — the CA, the enrolment
// authority, the trustees' key ceremony and the trustees, the coordinator and the regions'
// release stores — with a simulated fleet of devices that enrol, train and take releases
// (RunDemo), and drives a coordinator running elsewhere with a fleet of encrypting devices to
// measure it (Load, StartHostile). It also holds what that fleet learns from (Device,
// FeatureSet, GlobalSpec) and the model names an organisation publishes, which the `vigil`
// commands share.
//
// The package parses no flags and never exits: callers pass a config and writers for the
// report and the progress lines.
package sim
