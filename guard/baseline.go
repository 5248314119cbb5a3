package guard

import (
	"fmt"
	"math"
	"time"
)

// Baseline is what the guard has learnt about one user's context and standing: the devices and
// networks seen in trusted sessions, the hours of the week the user is active, their last
// trusted location and how many consistent behaviour windows they have behind them (which sets
// where their sessions start). It exists so that a long-running process (the device agent) can
// persist a user's baseline and restore it after a restart; it holds no raw input.
type Baseline struct {
	User     string               `json:"user"`
	Devices  map[string]time.Time `json:"devices,omitempty"`
	Networks map[string]time.Time `json:"networks,omitempty"`
	// Hours is the activity per hour-of-week slot, Sunday 00:00 first; empty when none.
	Hours []float64 `json:"hours,omitempty"`
	// Home is the last location of a trusted session, if any.
	Home     *BaselineLocation `json:"home,omitempty"`
	Maturity int               `json:"maturity"`
}

// BaselineLocation is a location in a Baseline.
type BaselineLocation struct {
	Lat, Lon, AccuracyKm float64
	At                   time.Time
}

// Baseline returns a copy of user's baseline, and false if the guard has never seen the user.
func (g *Guard) Baseline(user string) (Baseline, bool) {
	g.mu.Lock()
	p := g.users[user]
	g.mu.Unlock()
	if p == nil {
		return Baseline{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	b := Baseline{User: user, Maturity: p.maturity,
		Devices: make(map[string]time.Time, len(p.devices)), Networks: make(map[string]time.Time, len(p.networks))}
	for k, v := range p.devices {
		b.Devices[k] = v
	}
	for k, v := range p.networks {
		b.Networks[k] = v
	}
	if p.hours.total > 0 {
		b.Hours = append([]float64(nil), p.hours.count[:]...)
	}
	if p.hasHome {
		b.Home = &BaselineLocation{Lat: p.home.lat, Lon: p.home.lon, AccuracyKm: p.home.accKm, At: p.home.at}
	}
	return b, true
}

// RestoreBaseline installs a baseline saved by Baseline for a user the guard has not seen yet
// (call it before the user's first session); it asks Config.Scorers for the user's scorer as
// OpenSession would. It checks every bound a live baseline keeps.
func (g *Guard) RestoreBaseline(b Baseline) error {
	if err := checkID("baseline", "user", b.User); err != nil {
		return err
	}
	switch {
	case len(b.Devices) > MaxKnownDevices || len(b.Networks) > MaxKnownNetworks:
		return fmt.Errorf("%w: baseline of %q: %d devices and %d networks, limits %d and %d", ErrInvalidEvent, b.User, len(b.Devices), len(b.Networks), MaxKnownDevices, MaxKnownNetworks)
	case len(b.Hours) != 0 && len(b.Hours) != hoursPerWeek:
		return fmt.Errorf("%w: baseline of %q: %d hour-of-week slots, want %d", ErrInvalidEvent, b.User, len(b.Hours), hoursPerWeek)
	case b.Maturity < 0:
		return fmt.Errorf("%w: baseline of %q: negative maturity %d", ErrInvalidEvent, b.User, b.Maturity)
	}
	for _, h := range b.Hours {
		if !(h >= 0) || math.IsInf(h, 0) {
			return fmt.Errorf("%w: baseline of %q: hour activity %v", ErrInvalidEvent, b.User, h)
		}
	}
	if h := b.Home; h != nil && (!finite(h.Lat) || !finite(h.Lon) || h.Lat < -90 || h.Lat > 90 || h.Lon < -180 || h.Lon > 180 || !(h.AccuracyKm >= 0 && h.AccuracyKm <= MaxAccuracyKm)) {
		return fmt.Errorf("%w: baseline of %q: home location (%v, %v) ±%v km", ErrInvalidEvent, b.User, h.Lat, h.Lon, h.AccuracyKm)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.users[b.User] != nil {
		return fmt.Errorf("%w: baseline of %q: the user already has one", ErrSessionExists, b.User)
	}
	var scorer BehaviourScorer
	if g.cfg.Scorers != nil {
		var err error
		if scorer, err = g.cfg.Scorers.ScorerFor(b.User); err != nil {
			return fmt.Errorf("guard: scorer for user %q: %w", b.User, err)
		}
	}
	p := newProfile(b.User, scorer)
	for k, v := range b.Devices {
		p.devices[k] = v
	}
	for k, v := range b.Networks {
		p.networks[k] = v
	}
	for i, h := range b.Hours {
		p.hours.add(i, h)
	}
	if h := b.Home; h != nil {
		p.home, p.hasHome = fix{lat: h.Lat, lon: h.Lon, accKm: h.AccuracyKm, at: h.At}, true
	}
	p.maturity = b.Maturity
	g.users[b.User] = p
	return nil
}
