package updater

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/store"
)

// Errors callers branch on. Verification failures wrap the release package's sentinels instead
// (release.ErrRollback, release.ErrExpired, release.ErrUnknownKey, ...).
var (
	// ErrUnhealthy means a candidate scored worse in shadow than the health rule allows.
	ErrUnhealthy = errors.New("updater: candidate model is not healthy")
	// ErrIncompatible means a genuine release cannot run on this device (other feature set,
	// input width, or malformed model files); it is rejected for good.
	ErrIncompatible = errors.New("updater: release does not fit this device")
	// ErrNoModel means the device has no model installed yet.
	ErrNoModel = errors.New("updater: no model installed")
	// ErrNoPrevious means there is no previous model to roll back to.
	ErrNoPrevious = errors.New("updater: no previous model to roll back to")
	// ErrCorrupt means a file in the state directory is damaged.
	ErrCorrupt = errors.New("updater: state directory is corrupt")
	// ErrBadWindow means a feature window does not fit the model (width, non-finite values).
	ErrBadWindow = errors.New("updater: bad feature window")
	// ErrPollStuck means a poll has run far past its PollTimeout: a store read ignores its
	// deadline (a hung network mount under a directory store). Run reports it once per poll.
	ErrPollStuck = errors.New("updater: poll stuck past its deadline")
)

// Config configures an Updater. Zero values take the documented defaults.
type Config struct {
	// Store is the device's region's store; the updater only reads it. Required.
	Store store.Store
	// Model is the name of the model the device runs. Required.
	Model string
	// FeatureSet is the name of the device's feature extractor; releases of models over other
	// features are refused. Required.
	FeatureSet string
	// Dir is the state directory (created if missing). Required.
	Dir string
	// PinnedRoot is the root of trust shipped with the device (an encoded root envelope). It is
	// used until the state directory holds a newer root. Required.
	PinnedRoot []byte
	// Interval is how often Run polls the store (default 1 minute).
	Interval time.Duration
	// PollTimeout bounds one Poll, every read of it together (default 2 minutes): a store that
	// answers slowly, or drips bytes, cannot hold the updater longer. Every read is also bounded
	// in size by the signed metadata (documents 1 MiB, artifacts their signed size), a release's
	// artifacts together by release.MaxReleaseBytes, and all the reads of one Poll, every
	// stored version tried included, by release.MaxFetchBytes.
	PollTimeout time.Duration
	// ShadowWindows is how many live windows a candidate is scored on beside the current model
	// before it is promoted or rejected (default 50).
	ShadowWindows int
	// Health decides after ShadowWindows windows (default MeanErrorWithin(0.10)).
	Health HealthRule
	// Population, when set, makes the updater follow a population model (models.Population,
	// released as models.ArtifactPopulation) of this layout instead of an autoencoder. A
	// population model has no reconstruction error to compare in shadow: every release that
	// verifies and decodes strictly is installed at once, the one it replaces kept for Rollback.
	Population *models.Layout
	// PopulationBounds, if set, holds the bounds of the organisation's population rounds: a
	// population release is also refused when no honest round could have decoded it, for
	// example with variances inflated until impostors pass for their victims. It is the
	// statistics encoding itself for a feature set with a public reference
	// (models.PopulationStats), models.LearntBounds for one that learns its reference. The
	// release key that signs it is online at the coordinator; the bounds are not.
	PopulationBounds PopulationBounds
	// Now replaces the clock in tests.
	Now func() time.Time
}

func (c *Config) validate() error {
	if c.Store == nil {
		return errors.New("updater: no store given")
	}
	if c.Model == "" || store.ValidKey(c.Model) != nil {
		return fmt.Errorf("updater: model name %q is not valid", c.Model)
	}
	if c.FeatureSet == "" {
		return errors.New("updater: no feature set given")
	}
	if c.Dir == "" {
		return errors.New("updater: no state directory given")
	}
	if len(c.PinnedRoot) == 0 {
		return errors.New("updater: no pinned root given")
	}
	if c.Interval == 0 {
		c.Interval = time.Minute
	}
	if c.PollTimeout == 0 {
		c.PollTimeout = 2 * time.Minute
	}
	if c.ShadowWindows == 0 {
		c.ShadowWindows = 50
	}
	if c.Health == nil {
		c.Health = MeanErrorWithin(0.10)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Interval < 0 || c.PollTimeout < 0 || c.ShadowWindows < 1 || c.ShadowWindows > maxShadowWindows {
		return fmt.Errorf("updater: interval %v must be positive and shadow windows %d in 1..%d", c.Interval, c.ShadowWindows, maxShadowWindows)
	}
	return nil
}

// ShadowStats compares a candidate with the current model over the same live windows.
type ShadowStats struct {
	Candidate, Current uint64 // versions
	Windows            int
	// Mean reconstruction errors over the windows, and the candidate's largest.
	CurrentMean, CandidateMean, CandidateMax float64
}

// HealthRule decides whether a candidate may replace the current model; nil means promote.
type HealthRule func(ShadowStats) error

// MeanErrorWithin is the default health rule: the candidate's mean reconstruction error on the
// user's windows may exceed the current model's by at most the fraction tolerance, and all of
// its scores must be finite. Feed Observe only windows the session accepts as the user's own,
// so that a candidate that no longer fits the user is rejected.
func MeanErrorWithin(tolerance float64) HealthRule {
	return func(s ShadowStats) error {
		if !finite(s.CandidateMean) || !finite(s.CandidateMax) {
			return fmt.Errorf("%w: v%d scored a non-finite reconstruction error", ErrUnhealthy, s.Candidate)
		}
		if limit := (1 + tolerance) * s.CurrentMean; s.CandidateMean > limit {
			return fmt.Errorf("%w: v%d mean error %.4g over %d windows exceeds %.4g (v%d's %.4g + %.0f%%)",
				ErrUnhealthy, s.Candidate, s.CandidateMean, s.Windows, limit, s.Current, s.CurrentMean, 100*tolerance)
		}
		return nil
	}
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// PopulationBounds checks a population release against what an honest round could decode.
type PopulationBounds interface {
	CheckPopulation(*models.Population) error
}
