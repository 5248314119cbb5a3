package updater

import (
	"fmt"

	"github.com/vigilauth/vigil/models"
)

// EventKind says what a Poll, Observe or Rollback did.
type EventKind int

// Event kinds.
const (
	// NoChange: nothing new in the store, or the candidate's shadow evaluation goes on.
	NoChange EventKind = iota
	// Installed: the device had no model and installed this one directly.
	Installed
	// Staged: a new release verified and is now the candidate, in shadow.
	Staged
	// Promoted: the candidate passed its shadow evaluation and is now the running model.
	Promoted
	// Rejected: the candidate failed its shadow evaluation, or a genuine release cannot run on
	// this device; the version is never fetched again.
	Rejected
	// RolledBack: Rollback returned to the previous model.
	RolledBack
	// Recovered: a poll succeeded after one or more failed (Run only); Version is the running
	// one.
	Recovered
)

func (k EventKind) String() string {
	switch k {
	case NoChange:
		return "no-change"
	case Installed:
		return "installed"
	case Staged:
		return "staged"
	case Promoted:
		return "promoted"
	case Rejected:
		return "rejected"
	case RolledBack:
		return "rolled-back"
	case Recovered:
		return "recovered"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event reports what changed.
type Event struct {
	Kind    EventKind
	Version uint64 // the version the event is about
	// Replaced is the version that ran before (Promoted, RolledBack).
	Replaced uint64
	// Stats is the shadow comparison (Promoted, and Rejected after shadow).
	Stats *ShadowStats
	// Reason says why a version was rejected (wrapping ErrUnhealthy or ErrIncompatible).
	Reason error
}

// shadow scores the candidate beside the current model.
type shadow struct {
	cur, cand       *models.Scorer
	n               int
	curSum, candSum float64
	candMax         float64
}

func (u *Updater) resetShadowLocked() {
	u.shadow = nil
	if u.current == nil || u.candidate == nil {
		return
	}
	cur, err1 := u.current.NewScorer()
	cand, err2 := u.candidate.NewScorer()
	if err1 != nil || err2 != nil { // both models were checked when they were loaded
		return
	}
	u.shadow = &shadow{cur: cur, cand: cand}
}

// Observe scores one live feature window with the running model and, if there is one, the
// candidate. After Config.ShadowWindows windows (or at once, if the candidate scores a
// non-finite error) the health rule decides: the event is then Promoted or Rejected. Feed it
// only windows the session accepts as the user's own.
func (u *Updater) Observe(window []float64) (Event, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.current == nil {
		return Event{}, ErrNoModel
	}
	if len(window) != u.current.Spec.InputDim() {
		return Event{}, fmt.Errorf("%w: %d features, the model reads %d", ErrBadWindow, len(window), u.current.Spec.InputDim())
	}
	for i, x := range window {
		if !finite(x) {
			return Event{}, fmt.Errorf("%w: feature %d is %v", ErrBadWindow, i, x)
		}
	}
	s := u.shadow
	if s == nil {
		return Event{Kind: NoChange}, nil
	}
	a, c := s.cur.Score(window), s.cand.Score(window)
	s.n++
	s.curSum += a
	s.candSum += c
	if s.n == 1 || !(c <= s.candMax) {
		s.candMax = c
	}
	if finite(c) && s.n < u.cfg.ShadowWindows {
		return Event{Kind: NoChange}, nil
	}
	stats := ShadowStats{
		Candidate: u.candidate.Version, Current: u.current.Version, Windows: s.n,
		CurrentMean: s.curSum / float64(s.n), CandidateMean: s.candSum / float64(s.n), CandidateMax: s.candMax,
	}
	var reason error
	if !finite(c) {
		reason = fmt.Errorf("%w: v%d scored %v on window %d", ErrUnhealthy, stats.Candidate, c, s.n)
	} else {
		reason = u.cfg.Health(stats)
	}
	if reason != nil {
		return u.rejectLocked(stats, reason)
	}
	return u.promoteLocked(stats)
}

func (u *Updater) promoteLocked(stats ShadowStats) (Event, error) {
	next := u.st.clone()
	next.Previous, next.Current, next.Candidate = next.Current, next.Candidate, nil
	// The promoted version is now verified and installed: it becomes the floor (the verifier
	// follows at the next poll).
	next.Verified = max(next.Verified, next.Current.Version)
	if err := u.commitLocked(next); err != nil {
		return Event{}, err
	}
	old := u.current
	u.previous, u.current, u.candidate = u.current, u.candidate, nil
	u.resetShadowLocked()
	return Event{Kind: Promoted, Version: u.current.Version, Replaced: old.Version, Stats: &stats}, nil
}

func (u *Updater) rejectLocked(stats ShadowStats, reason error) (Event, error) {
	next := u.st.clone()
	next.Candidate = nil
	next.reject(rejection{Version: stats.Candidate, ManifestSHA256: u.candidate.ref.ManifestSHA256})
	if err := u.commitLocked(next); err != nil {
		return Event{}, err
	}
	u.candidate = nil
	u.resetShadowLocked()
	return Event{Kind: Rejected, Version: stats.Candidate, Stats: &stats, Reason: reason}, nil
}

// Rollback makes the previous model the running one again and rejects the one it replaces for
// good. A candidate in shadow stays, and its evaluation starts over against the restored model.
func (u *Updater) Rollback() (Event, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.previous == nil {
		return Event{}, ErrNoPrevious
	}
	next := u.st.clone()
	next.reject(rejection{Version: next.Current.Version, ManifestSHA256: u.current.ref.ManifestSHA256})
	next.Current, next.Previous = next.Previous, nil
	if err := u.commitLocked(next); err != nil {
		return Event{}, err
	}
	old := u.current
	u.current, u.previous = u.previous, nil
	u.resetShadowLocked()
	return Event{Kind: RolledBack, Version: u.current.Version, Replaced: old.Version}, nil
}
