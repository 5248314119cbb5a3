package main

import "flag"

// The differential-privacy flags shared by `vigil coordinator`, `vigil client` and `vigil demo`
// are on by default, off only with a flag that says what it does; package sim turns them into
// settings (sim.CoordinatorPrivacy, sim.DeviceLedger).

// setFlag reports whether the named flag was given on the command line.
func setFlag(fs *flag.FlagSet, name string) bool { return setFlags(fs)[name] }
