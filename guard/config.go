package guard

import (
	"fmt"
	"math"
	"time"
)

// Config configures a Guard. A zero field means its default; New fills them in (see
// DefaultConfig for the values) and rejects values out of range.
type Config struct {
	Trust   TrustConfig
	Context ContextConfig
	Tiers   TierConfig

	// KeystrokeWindow and KeystrokeHop: the scorer sees the last KeystrokeWindow keystrokes
	// every KeystrokeHop keystrokes. Defaults 50 and 5: a takeover is judged within a few
	// keystrokes of its windows turning foreign, not up to half a window later (about 20 µs of
	// scoring per window with the real models, so about 4 µs per keystroke).
	KeystrokeWindow, KeystrokeHop int
	// MouseWindow and MouseHop: the same for mouse events. Defaults 1200 and 300, about 40
	// actions of Balabit's recorded use: a mouse action says much less about its user than a
	// keystroke, and over windows of 200 events (about 7 actions) the owner was challenged 20
	// times an hour (`vigil eval takeover` on the Balabit mouse data at epsilon 8; 0.64 an
	// hour at these defaults, which catch fewer takeovers: see the README).
	MouseWindow, MouseHop int

	// ReorderTolerance is how far an event may lag the newest one of its session before it is
	// rejected as out of order, for streams (keyboard, mouse, context) captured separately.
	// Default 100 ms.
	ReorderTolerance time.Duration
	// MaxClockSkew is how far in the future, by Clock, an event may lie. Default 5 minutes.
	MaxClockSkew time.Duration

	// Scorers gives each user's behavioural scorer. Nil means behaviour enters only through
	// ObserveBehaviour; keystroke and mouse events are then checked and ordered but not scored.
	Scorers ScorerSource
	// Recorder receives every decision and session event; nil records nothing.
	Recorder Recorder
	// Clock returns the current time; default time.Now. Replays set it to the replayed time.
	Clock func() time.Time
}

// TrustConfig sets how fast trust is earned and lost, in points on the 0-100 scale.
//
// The behavioural defaults were tuned with the real keystroke models (guard/behaviour) by
// replaying the first 100 participants of the Aalto keystroke data through the guard (package
// guard/takeover, vigil eval takeover), and checked on the other 400 at epsilon 8 (seeds 1-5,
// with guard/behaviour's recalibration of windows by their corrections): a takeover by another
// person is challenged after a median of 40-42 of their keystrokes, 1.1-1.45% of takeovers are
// never challenged, and a genuine user sees 0.34-0.45 challenges per 1,000 keystrokes (0.395 on
// average).
type TrustConfig struct {
	// InitialTrust is where a new user's sessions start: moderate, above the soft-challenge
	// band but below what sensitive resources usually require. Default 75.
	InitialTrust float64
	// EstablishedTrust is where sessions start once the user has MaturityWindows consistent
	// windows behind them; in between, the start rises linearly. Defaults 85 and 200.
	EstablishedTrust float64
	MaturityWindows  int
	// ConsistentBelow: a window with anomaly below it is consistent and may earn trust, up to
	// GainPerWindow at anomaly 0. Defaults 0.1 and 0.4 (2 per 25 keystrokes at the default
	// hop): the owner's own windows mostly score well below 0.1, another person's almost never do.
	ConsistentBelow float64
	GainPerWindow   float64
	// GainPerMinute and GainBurst bound earning over time: an allowance accrues at
	// GainPerMinute up to GainBurst, and gains spend it. Defaults 6 and 6.
	GainPerMinute float64
	GainBurst     float64
	// LossAbove: a window with anomaly above it costs trust, rising linearly to
	// MaxBehaviourLoss at anomaly 1, for the share of its events not yet charged as much (see
	// Sustain). Defaults 0.3 and 26: certainly foreign input takes an established session into
	// the soft-challenge band as soon as three windows in a row show it, and foreign typing that
	// goes on costs about MaxBehaviourLoss more per window of it; a run of moderately odd
	// windows, each short of the user's threshold, adds up to a challenge too (another person
	// who types much like the owner is caught that way); context signals amplify the losses.
	LossAbove        float64
	MaxBehaviourLoss float64
	// Sustain: a window's loss is judged by the least anomalous of the windows of its kind
	// scored over the last Sustain events (its own included). Each event is charged once, at
	// the highest such severity of the windows holding it. Default 10: with keystroke windows
	// every 5 keystrokes, the owner's brief odd stretches, which rarely keep three windows in a
	// row foreign, cost little, while another person's typing, which does, is judged at once.
	Sustain int
	// ContextAmplify: after context signals of severity s, behavioural losses are multiplied
	// by 1 + ContextAmplify*s and gains by 1 - s, until consistent windows halve s away.
	// Default 1.
	ContextAmplify float64
}

// ContextConfig sets the context rules.
type ContextConfig struct {
	// MaxTravelKmh is the fastest plausible travel: an airliner's 900 km/h plus slack.
	// Default 1000.
	MaxTravelKmh float64
	// DefaultAccuracyKm is the location uncertainty assumed when an event gives none.
	// Default 50 (city-level IP geolocation).
	DefaultAccuracyKm float64
	// Trust lost to each rule at full severity. Defaults 40, 15, 10 and 10: all four together
	// take an established session into the hard-challenge band, and the behavioural losses they
	// amplify finish it; a traveller's new device and network alone cost 25.
	ImpossibleTravelLoss float64
	NewDeviceLoss        float64
	NewNetworkLoss       float64
	UnusualHourLoss      float64
	// HourPrior is how many observations' worth of uniform activity smooth the hour-of-week
	// histogram, and HourMinObservations how many observations it needs before it judges any
	// hour. Defaults 10 and 40. (An observation is one session active in one hour-of-week
	// slot.) The prior alone keeps a never-seen hour's ratio at HourPrior/(n+HourPrior), so with
	// the defaults nothing is unusual before about 60 observations, and a never-seen hour
	// reaches full severity only as n grows large.
	HourPrior           float64
	HourMinObservations int
	// UnusualHourRatio: an hour whose smoothed share of activity is below this fraction of
	// the average hour's is unusual. Default 0.15.
	UnusualHourRatio float64
	// LearnAfterWindows: a session's new device, network, location and hours join the user's
	// baseline after this many consistent windows in good standing (or at once on a passed
	// challenge or an analyst's "genuine"). Default 10.
	LearnAfterWindows int
}

// TierConfig sets the response tiers. Trust at or above SoftBelow is monitored passively;
// below it a soft challenge is issued, below HardBelow a hard one, below TerminateBelow the
// session is revoked.
type TierConfig struct {
	// Defaults 60, 35 and 10.
	SoftBelow, HardBelow, TerminateBelow float64
	// How long a challenge may stay unanswered before it counts as failed.
	// Defaults 2 and 5 minutes.
	SoftTimeout, HardTimeout time.Duration
	// Trust a passed challenge restores (if trust was lower). Defaults 90 and 90: a passed
	// challenge proves the owner is present, so it restores more than an established session
	// starts with, and the odd typing that brought it (often the same windows, half of which the
	// next window shares) does not bring a second one at once. A hard challenge, a full
	// re-authentication, restores no less. (A soft pass restored 80 before: replaying the first
	// 100 Aalto participants with three seeds, 9 of 57 genuine challenges were such repeats.)
	SoftPassTrust, HardPassTrust float64
}

// DefaultConfig returns the defaults New fills in.
func DefaultConfig() Config {
	var c Config
	if err := c.validate(); err != nil {
		panic(err) // the defaults are constants; a failure is a bug in this file
	}
	return c
}

func (c *Config) validate() error {
	t, x, r := &c.Trust, &c.Context, &c.Tiers
	floats := []struct {
		name     string
		v        *float64
		def, max float64
	}{
		{"Trust.InitialTrust", &t.InitialTrust, 75, MaxTrust},
		{"Trust.EstablishedTrust", &t.EstablishedTrust, 85, MaxTrust},
		{"Trust.ConsistentBelow", &t.ConsistentBelow, 0.1, 1},
		{"Trust.GainPerWindow", &t.GainPerWindow, 0.4, MaxTrust},
		{"Trust.GainPerMinute", &t.GainPerMinute, 6, MaxTrust},
		{"Trust.GainBurst", &t.GainBurst, 6, MaxTrust},
		{"Trust.LossAbove", &t.LossAbove, 0.3, 1},
		{"Trust.MaxBehaviourLoss", &t.MaxBehaviourLoss, 26, MaxTrust},
		{"Trust.ContextAmplify", &t.ContextAmplify, 1, 10},
		{"Context.MaxTravelKmh", &x.MaxTravelKmh, 1000, 100_000},
		{"Context.DefaultAccuracyKm", &x.DefaultAccuracyKm, 50, MaxAccuracyKm},
		{"Context.ImpossibleTravelLoss", &x.ImpossibleTravelLoss, 40, MaxTrust},
		{"Context.NewDeviceLoss", &x.NewDeviceLoss, 15, MaxTrust},
		{"Context.NewNetworkLoss", &x.NewNetworkLoss, 10, MaxTrust},
		{"Context.UnusualHourLoss", &x.UnusualHourLoss, 10, MaxTrust},
		{"Context.HourPrior", &x.HourPrior, 10, 1e6},
		{"Context.UnusualHourRatio", &x.UnusualHourRatio, 0.15, 1},
		{"Tiers.SoftBelow", &r.SoftBelow, 60, MaxTrust},
		{"Tiers.HardBelow", &r.HardBelow, 35, MaxTrust},
		{"Tiers.TerminateBelow", &r.TerminateBelow, 10, MaxTrust},
		{"Tiers.SoftPassTrust", &r.SoftPassTrust, 90, MaxTrust},
		{"Tiers.HardPassTrust", &r.HardPassTrust, 90, MaxTrust},
	}
	for _, f := range floats {
		if *f.v == 0 {
			*f.v = f.def
		}
		if math.IsNaN(*f.v) || *f.v < 0 || *f.v > f.max {
			return fmt.Errorf("%w: %s = %v, want 0..%v", ErrConfig, f.name, *f.v, f.max)
		}
	}
	ints := []struct {
		name     string
		v        *int
		def, max int
	}{
		{"Trust.MaturityWindows", &t.MaturityWindows, 200, 1 << 30},
		{"Context.HourMinObservations", &x.HourMinObservations, 40, 1 << 30},
		{"Context.LearnAfterWindows", &x.LearnAfterWindows, 10, 1 << 30},
		{"KeystrokeWindow", &c.KeystrokeWindow, 50, MaxWindow},
		{"KeystrokeHop", &c.KeystrokeHop, 5, MaxWindow},
		{"Trust.Sustain", &t.Sustain, 10, MaxWindow},
		{"MouseWindow", &c.MouseWindow, 1200, MaxWindow},
		{"MouseHop", &c.MouseHop, 300, MaxWindow},
	}
	for _, f := range ints {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 || *f.v > f.max {
			return fmt.Errorf("%w: %s = %d, want 1..%d", ErrConfig, f.name, *f.v, f.max)
		}
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ReorderTolerance", &c.ReorderTolerance, 100 * time.Millisecond},
		{"MaxClockSkew", &c.MaxClockSkew, 5 * time.Minute},
		{"Tiers.SoftTimeout", &r.SoftTimeout, 2 * time.Minute},
		{"Tiers.HardTimeout", &r.HardTimeout, 5 * time.Minute},
	}
	for _, f := range durations {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 {
			return fmt.Errorf("%w: %s = %v must not be negative", ErrConfig, f.name, *f.v)
		}
	}
	switch {
	case !(r.TerminateBelow < r.HardBelow-1 && r.HardBelow < r.SoftBelow):
		// A failed soft challenge drops trust to HardBelow-1, which must not terminate.
		return fmt.Errorf("%w: tiers need TerminateBelow (%v) < HardBelow-1 (%v) and HardBelow < SoftBelow (%v)", ErrConfig, r.TerminateBelow, r.HardBelow-1, r.SoftBelow)
	case r.SoftPassTrust < r.SoftBelow || r.HardPassTrust < r.SoftBelow:
		return fmt.Errorf("%w: a passed challenge must restore trust to at least SoftBelow (%v)", ErrConfig, r.SoftBelow)
	case t.InitialTrust > t.EstablishedTrust:
		return fmt.Errorf("%w: Trust.InitialTrust (%v) above Trust.EstablishedTrust (%v)", ErrConfig, t.InitialTrust, t.EstablishedTrust)
	case t.ConsistentBelow > t.LossAbove:
		return fmt.Errorf("%w: Trust.ConsistentBelow (%v) above Trust.LossAbove (%v)", ErrConfig, t.ConsistentBelow, t.LossAbove)
	case t.LossAbove >= 1:
		return fmt.Errorf("%w: Trust.LossAbove must be below 1", ErrConfig)
	case c.KeystrokeHop > c.KeystrokeWindow || c.MouseHop > c.MouseWindow:
		return fmt.Errorf("%w: a hop longer than its window skips events", ErrConfig)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}
