package guard

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// profile is one user's baseline: the devices, networks, last location and hours of the week
// the user has been seen with in trusted sessions, how much consistent behaviour they have
// shown, and their behavioural scorer. Sessions hold its lock while they read or teach it.
type profile struct {
	mu       sync.Mutex
	user     string
	scorer   BehaviourScorer // nil without Config.Scorers
	devices  map[string]time.Time
	networks map[string]time.Time
	hours    hourHistogram
	home     fix // last location of a trusted session
	hasHome  bool
	maturity int // consistent windows learned
}

func newProfile(user string, scorer BehaviourScorer) *profile {
	return &profile{user: user, scorer: scorer, devices: map[string]time.Time{}, networks: map[string]time.Time{}}
}

// startTrust is where a new session of this user starts: InitialTrust for a new user, rising
// to EstablishedTrust with the consistent windows the user has behind them.
func (p *profile) startTrust(c *TrustConfig) float64 {
	m := math.Min(1, float64(p.maturity)/float64(c.MaturityWindows))
	return c.InitialTrust + (c.EstablishedTrust-c.InitialTrust)*m
}

// sessionContext is what one session has seen of context: its last location, what it has
// already been penalised for, what it has yet to teach the user's baseline and what it taught.
type sessionContext struct {
	last    fix
	hasLast bool
	flagged map[string]bool // "d:"+fingerprint, "n:"+network already penalised
	hotSlot [hoursPerWeek]bool
	counted [hoursPerWeek]bool // slots this session already counts (pending or learned)
	pending learnedSet
	learned learnedSet
	// prevHome is the user's home before this session first replaced it, for rollback.
	prevHome    fix
	prevHasHome bool
	setHome     bool
}

// learnedSet lists baseline entries a session has yet to teach (pending) or taught (learned).
type learnedSet struct {
	devices, networks []string
	slots             []int
	maturity          int
}

// evaluate applies the context rules to ev and returns the ones that fired. The first device,
// network and location a user is ever seen with are learned at once (trust on first use): the
// session follows a login, and a baseline has to start somewhere.
func (p *profile) evaluate(cx *sessionContext, ev *ContextEvent, c *ContextConfig) []contextSignal {
	var sigs []contextSignal
	acc := ev.AccuracyKm
	if acc == 0 {
		acc = c.DefaultAccuracyKm
	}
	cur := fix{lat: ev.Lat, lon: ev.Lon, accKm: acc, at: ev.LocalTime}
	ref, hasRef := cx.last, cx.hasLast
	if !hasRef {
		ref, hasRef = p.home, p.hasHome
	}
	if hasRef {
		if tr := checkTravel(ref, cur, c.MaxTravelKmh); !tr.plausible {
			sigs = append(sigs, contextSignal{SignalImpossibleTravel, tr.severity,
				fmt.Sprintf("impossible travel: (%.2f, %.2f) to (%.2f, %.2f), %s, above the %.0f km/h limit",
					ref.lat, ref.lon, cur.lat, cur.lon, tr, c.MaxTravelKmh)})
		}
	}
	cx.last, cx.hasLast = cur, true
	if !p.hasHome {
		cx.noteHome(p)
		p.home, p.hasHome = cur, true
	}
	if cx.flagged == nil {
		cx.flagged = map[string]bool{}
	}
	if known, isNew := checkKnown(cx, p.devices, "d:", ev.DeviceFingerprint, &cx.pending.devices, &cx.learned.devices, ev.LocalTime); isNew {
		sigs = append(sigs, contextSignal{SignalNewDevice, 1,
			fmt.Sprintf("new device: fingerprint %s was never seen with this user (%d known)", short(ev.DeviceFingerprint), known)})
	}
	if known, isNew := checkKnown(cx, p.networks, "n:", ev.Network, &cx.pending.networks, &cx.learned.networks, ev.LocalTime); isNew {
		sigs = append(sigs, contextSignal{SignalNewNetwork, 1,
			fmt.Sprintf("new network: %s was never seen with this user (%d known)", short(ev.Network), known)})
	}
	slot := hourOfWeek(ev.LocalTime)
	if !cx.counted[slot] {
		cx.counted[slot] = true
		cx.pending.slots = append(cx.pending.slots, slot)
	}
	if r, ok := p.hours.ratio(slot, c.HourPrior, c.HourMinObservations); ok && r < c.UnusualHourRatio && !cx.hotSlot[slot] {
		cx.hotSlot[slot] = true
		sigs = append(sigs, contextSignal{SignalUnusualHour, 1 - r/c.UnusualHourRatio,
			fmt.Sprintf("unusual hour: %s local time has %.2f× the activity of this user's average hour (%.0f observations)", slotName(slot), r, p.hours.total)})
	}
	return sigs
}

// checkKnown looks value up in known. A known value is refreshed; the first value a user ever
// has is learned at once; an unknown one is queued to learn and reported once per session,
// with the number of values known.
func checkKnown(cx *sessionContext, known map[string]time.Time, tag, value string, pending, learned *[]string, at time.Time) (int, bool) {
	if _, ok := known[value]; ok {
		known[value] = at
		return 0, false
	}
	if len(known) == 0 {
		known[value] = at
		*learned = append(*learned, value)
		return 0, false
	}
	if cx.flagged[tag+value] {
		return 0, false
	}
	cx.flagged[tag+value] = true
	*pending = append(*pending, value)
	return len(known), true
}

func (cx *sessionContext) noteHome(p *profile) {
	if !cx.setHome {
		cx.prevHome, cx.prevHasHome, cx.setHome = p.home, p.hasHome, true
	}
}

// commit teaches the user's baseline what the session has shown while in good standing.
func (p *profile) commit(cx *sessionContext, at time.Time) {
	for _, d := range cx.pending.devices {
		if _, ok := p.devices[d]; !ok {
			remember(p.devices, d, at, MaxKnownDevices)
			cx.learned.devices = append(cx.learned.devices, d)
		}
	}
	for _, n := range cx.pending.networks {
		if _, ok := p.networks[n]; !ok {
			remember(p.networks, n, at, MaxKnownNetworks)
			cx.learned.networks = append(cx.learned.networks, n)
		}
	}
	for _, s := range cx.pending.slots {
		p.hours.add(s, 1)
	}
	cx.learned.slots = append(cx.learned.slots, cx.pending.slots...)
	if cx.hasLast {
		cx.noteHome(p)
		p.home, p.hasHome = cx.last, true
	}
	p.maturity += cx.pending.maturity
	cx.learned.maturity += cx.pending.maturity
	cx.pending = learnedSet{}
}

// rollback removes from the baseline what a compromised session taught it, and drops what
// it had yet to teach.
func (p *profile) rollback(cx *sessionContext) {
	for _, d := range cx.learned.devices {
		delete(p.devices, d)
	}
	for _, n := range cx.learned.networks {
		delete(p.networks, n)
	}
	for _, s := range cx.learned.slots {
		p.hours.add(s, -1)
	}
	if cx.setHome {
		p.home, p.hasHome = cx.prevHome, cx.prevHasHome
	}
	p.maturity = max(0, p.maturity-cx.learned.maturity)
	cx.learned, cx.pending = learnedSet{}, learnedSet{}
	cx.setHome = false
}

// remember adds key to a bounded set, forgetting the least recently seen entry when full.
func remember(m map[string]time.Time, key string, at time.Time, limit int) {
	if len(m) >= limit {
		var oldest string
		var oldestAt time.Time
		for k, t := range m {
			if oldest == "" || t.Before(oldestAt) {
				oldest, oldestAt = k, t
			}
		}
		delete(m, oldest)
	}
	m[key] = at
}

// short quotes an opaque identifier, shortened for explanations.
func short(s string) string {
	if len(s) > 24 {
		s = s[:24] + "…"
	}
	return fmt.Sprintf("%q", s)
}
