package guard

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
)

// SavedSession is a live session's standing as SaveSession takes it and RestoreSession gives
// it back after a restart of the process that holds the guard. It holds no events and no
// window contents: what the session's windows were scoring starts afresh.
type SavedSession struct {
	ID, User string
	Opened   time.Time // when the session opened
	Last     time.Time // its newest event (or opening) when the standing was taken
	Trust    float64
	Tier     Tier
	Risk     float64 // context risk in [0, 1]
	Revoked  bool
	// Challenge is the open challenge (zero if none); LastChallenge the ID of the session's
	// latest challenge, so that new ones do not reuse an ID an application has seen.
	Challenge     Challenge
	LastChallenge uint64
	// Context is what the session had seen of context. Without it a restored session was
	// charged a second time for the new device, network or unusual hour it had already paid
	// for, measured travel from its user's home instead of from where it was, and forgot what
	// it had to teach the baseline (or take back from it, if it turns out compromised).
	Context SavedContext
}

// SavedContext is a session's view of context in a SavedSession.
type SavedContext struct {
	Last *BaselineLocation // the session's last location
	// Flagged are the devices ("d:" and the fingerprint) and networks ("n:" and the network)
	// the session has been charged for; UnusualHours the hour-of-week slots (Sunday 00:00 is
	// 0) it has been charged for; Counted the slots it counts towards the user's hours.
	Flagged      []string
	UnusualHours []int
	Counted      []int
	// Pending is what the session has yet to teach its user's baseline, Learned what it taught.
	Pending, Learned SavedLearning
	// PrevHome is the user's home before the session first replaced it (HomeSet), for a rollback.
	PrevHome *BaselineLocation
	HomeSet  bool
}

// SavedLearning is a session's contribution to its user's baseline.
type SavedLearning struct {
	Devices, Networks []string
	Hours             []int
	Maturity          int
}

// maxSavedFlags bounds SavedContext.Flagged: each entry cost its session a context penalty, so
// a live session is revoked long before it has this many.
const maxSavedFlags = 4 * (MaxKnownDevices + MaxKnownNetworks)

// SaveSession returns session id's standing, for RestoreSession after a restart.
func (g *Guard) SaveSession(id string) (SavedSession, error) {
	s, err := g.lookup(id)
	if err != nil {
		return SavedSession{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &s.eng
	return SavedSession{ID: s.id, User: s.user.user, Opened: s.opened, Last: s.last, Trust: e.trust, Tier: e.tier(),
		Risk: e.risk, Revoked: e.revoked, Challenge: e.challenge, LastChallenge: e.lastID, Context: s.cx.save()}, nil
}

func (cx *sessionContext) save() SavedContext {
	sc := SavedContext{Pending: cx.pending.save(), Learned: cx.learned.save(), HomeSet: cx.setHome}
	if cx.hasLast {
		sc.Last = cx.last.save()
	}
	if cx.setHome && cx.prevHasHome {
		sc.PrevHome = cx.prevHome.save()
	}
	for _, k := range slices.Sorted(maps.Keys(cx.flagged)) {
		if cx.flagged[k] {
			sc.Flagged = append(sc.Flagged, k)
		}
	}
	for slot := range hoursPerWeek {
		if cx.hotSlot[slot] {
			sc.UnusualHours = append(sc.UnusualHours, slot)
		}
		if cx.counted[slot] {
			sc.Counted = append(sc.Counted, slot)
		}
	}
	return sc
}

func (l learnedSet) save() SavedLearning {
	return SavedLearning{Devices: slices.Clone(l.devices), Networks: slices.Clone(l.networks), Hours: slices.Clone(l.slots), Maturity: l.maturity}
}

func (f fix) save() *BaselineLocation {
	return &BaselineLocation{Lat: f.lat, Lon: f.lon, AccuracyKm: f.accKm, At: f.at}
}

// restore checks sc against the bounds a live session keeps and returns it as a
// sessionContext.
func (sc *SavedContext) restore() (sessionContext, error) {
	var cx sessionContext
	if len(sc.Flagged) > maxSavedFlags {
		return cx, fmt.Errorf("%d flagged devices and networks, at most %d", len(sc.Flagged), maxSavedFlags)
	}
	cx.flagged = make(map[string]bool, len(sc.Flagged))
	for _, k := range sc.Flagged {
		if !strings.HasPrefix(k, "d:") && !strings.HasPrefix(k, "n:") {
			return cx, fmt.Errorf("flagged entry %q is neither a device nor a network", k)
		}
		cx.flagged[k] = true
	}
	for _, set := range []struct {
		slots []int
		into  *[hoursPerWeek]bool
	}{{sc.UnusualHours, &cx.hotSlot}, {sc.Counted, &cx.counted}} {
		for _, slot := range set.slots {
			if slot < 0 || slot >= hoursPerWeek {
				return cx, fmt.Errorf("hour-of-week slot %d", slot)
			}
			set.into[slot] = true
		}
	}
	var err error
	if cx.pending, err = sc.Pending.restore(); err != nil {
		return cx, fmt.Errorf("pending: %w", err)
	}
	if cx.learned, err = sc.Learned.restore(); err != nil {
		return cx, fmt.Errorf("learned: %w", err)
	}
	if sc.Last != nil {
		if cx.last, err = sc.Last.fix(); err != nil {
			return cx, fmt.Errorf("last location: %w", err)
		}
		cx.hasLast = true
	}
	cx.setHome = sc.HomeSet
	if sc.PrevHome != nil {
		if !sc.HomeSet {
			return cx, errors.New("a previous home without the home set")
		}
		if cx.prevHome, err = sc.PrevHome.fix(); err != nil {
			return cx, fmt.Errorf("previous home: %w", err)
		}
		cx.prevHasHome = true
	}
	return cx, nil
}

func (l SavedLearning) restore() (learnedSet, error) {
	if len(l.Devices) > maxSavedFlags || len(l.Networks) > maxSavedFlags || len(l.Hours) > hoursPerWeek || l.Maturity < 0 {
		return learnedSet{}, fmt.Errorf("%d devices, %d networks, %d hours, maturity %d", len(l.Devices), len(l.Networks), len(l.Hours), l.Maturity)
	}
	for _, slot := range l.Hours {
		if slot < 0 || slot >= hoursPerWeek {
			return learnedSet{}, fmt.Errorf("hour-of-week slot %d", slot)
		}
	}
	return learnedSet{devices: slices.Clone(l.Devices), networks: slices.Clone(l.Networks), slots: slices.Clone(l.Hours), maturity: l.Maturity}, nil
}

func (b *BaselineLocation) fix() (fix, error) {
	if !finite(b.Lat) || !finite(b.Lon) || b.Lat < -90 || b.Lat > 90 || b.Lon < -180 || b.Lon > 180 || !(b.AccuracyKm >= 0 && b.AccuracyKm <= MaxAccuracyKm) {
		return fix{}, fmt.Errorf("(%v, %v) ±%v km", b.Lat, b.Lon, b.AccuracyKm)
	}
	return fix{lat: b.Lat, lon: b.Lon, accKm: b.AccuracyKm, at: b.At}, nil
}

// RestoreSession takes back a session SaveSession saved, at time at (now, after the restart).
// It never raises the session's standing: trust is the saved trust (the guard's trust does not
// decay with time, so the downtime costs none), the tier is at least the saved tier (a
// challenge is issued if the saved tier called for one the saved state lacks), a revoked or
// terminated session stays revoked, and a challenge whose deadline passed during the downtime
// counts as unanswered, as it would have had the process kept running. Earning starts with an
// empty allowance, as in a new session.
func (g *Guard) RestoreSession(sv SavedSession, at time.Time) (Status, error) {
	if err := checkID("restore", "session ID", sv.ID); err != nil {
		return Status{}, err
	}
	if err := checkID("restore", "user", sv.User); err != nil {
		return Status{}, err
	}
	for _, t := range []struct {
		field string
		t     time.Time
	}{{"open time", sv.Opened}, {"restore time", at}} {
		if err := checkEventTime("restore", sv.ID, t.field, t.t); err != nil {
			return Status{}, err
		}
	}
	if now := g.cfg.Clock(); sv.Opened.After(now.Add(g.cfg.MaxClockSkew)) {
		return Status{}, fmt.Errorf("%w: session %q opened at %s, in the future", ErrBadTime, sv.ID, sv.Opened.Format(time.RFC3339))
	}
	if math.IsNaN(sv.Trust) || sv.Trust < 0 || sv.Trust > MaxTrust || math.IsNaN(sv.Risk) || sv.Risk < 0 || sv.Risk > 1 {
		return Status{}, invalid("restore", sv.ID, "trust %v or risk %v out of range", sv.Trust, sv.Risk)
	}
	if sv.Tier > TierTerminate || sv.Challenge.Open() && sv.Challenge.Tier != TierSoft && sv.Challenge.Tier != TierHard {
		return Status{}, invalid("restore", sv.ID, "tier %v, challenge tier %v", sv.Tier, sv.Challenge.Tier)
	}
	cx, err := sv.Context.restore()
	if err != nil {
		return Status{}, invalid("restore", sv.ID, "context: %v", err)
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.index.Load()
	if _, dup := old[sv.ID]; dup {
		return Status{}, fmt.Errorf("%w: %q", ErrSessionExists, sv.ID)
	}
	p, err := g.profile(sv.User)
	if err != nil {
		return Status{}, err
	}
	last := maxTime(sv.Last, sv.Opened)
	at = maxTime(at, last)
	s := &sessionState{id: sv.ID, user: p, opened: sv.Opened, last: at, cfg: &g.cfg, cx: cx,
		eng:  newEngine(&g.cfg, sv.Trust, at),
		keys: newWindow[KeystrokeEvent](g.cfg.KeystrokeWindow, g.cfg.KeystrokeHop, g.cfg.Trust.Sustain),
		mice: newWindow[MouseEvent](g.cfg.MouseWindow, g.cfg.MouseHop, g.cfg.Trust.Sustain),
	}
	e := &s.eng
	e.risk, e.lastID = sv.Risk, max(sv.LastChallenge, sv.Challenge.ID)
	e.ledger.add(Reason{Signal: SignalSession, Text: fmt.Sprintf("session restored after a restart at trust %s (standing saved at %s)",
		trustText(sv.Trust), last.UTC().Format(time.RFC3339))})
	if sv.Revoked || sv.Tier == TierTerminate {
		e.revoked, e.trust = true, 0
	} else {
		e.challenge = sv.Challenge
	}
	e.shown = e.tier()
	e.emit(TransitionRestored, at, e.challenge.ID)
	if !e.revoked {
		if !e.expire(at) && sv.Tier > e.tier() && sv.Tier <= TierHard {
			e.issue(at, sv.Tier)
		}
		e.settle(at)
	}
	return g.publish(old, s, at), nil
}
