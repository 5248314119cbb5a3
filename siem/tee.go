package siem

import "github.com/vigilauth/vigil/guard"

// Tee returns a guard.Recorder that hands every entry to each of rs in turn: the audit queue
// and an Exporter, say. It adds no blocking and no allocation of its own, so it is as safe on
// Authorize's path as its recorders are.
func Tee(rs ...guard.Recorder) guard.Recorder { return tee(rs) }

type tee []guard.Recorder

func (t tee) RecordDecision(d guard.Decision) {
	for _, r := range t {
		r.RecordDecision(d)
	}
}

func (t tee) RecordTransition(tr guard.Transition) {
	for _, r := range t {
		r.RecordTransition(tr)
	}
}
