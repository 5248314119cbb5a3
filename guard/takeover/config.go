package takeover

import (
	"fmt"
	"time"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/eval"
	"github.com/vigilauth/vigil/models/keystroke"
)

// Start says where replayed sessions start on the trust scale.
type Start string

// Starts.
const (
	// StartEstablished starts sessions at the guard's EstablishedTrust, as for a user with a
	// long consistent history: more trust for an impostor to wear down, more margin for the
	// owner.
	StartEstablished Start = "established"
	// StartNew starts sessions at InitialTrust, as the guard starts a user it has just met.
	StartNew Start = "new"
)

// Config sets a takeover evaluation. The zero value of every field but Dir gives the default.
type Config struct {
	// Dir holds the participants' *_keystrokes.txt[.gz] files.
	Dir string
	// Window is L, the keystrokes per window, for enrolment and for the guard's
	// KeystrokeWindow (default 50); Hop the guard's KeystrokeHop (default Window/10); Enrol is
	// G, the windows each participant enrols with (default 5); Stride the step of the
	// overlapping enrolment summaries (default Window/5).
	Window, Hop, Enrol, Stride int
	// Skip and Users select participants in file name order: skip the first Skip, then take
	// Users (0: all the rest).
	Skip, Users int
	// Background, when positive, takes the first Background selected participants out of the
	// replay: only their devices train the federation, so that no replayed participant's data
	// is in it.
	Background int
	// Impostors is the number of takeover sessions per participant, each by a different other
	// participant drawn with the seed (default 5).
	Impostors int
	// Seed fixes every random choice: impostors, takeover points, model initialisations,
	// forests, federated sampling.
	Seed uint64
	// Start is where sessions start on the trust scale (default StartEstablished).
	Start Start
	// Workers bounds the parallelism (default GOMAXPROCS).
	Workers int
	// Guard configures the guard the sessions are replayed through (its trust dynamics and
	// tiers); Scorers, Recorder and Clock are set by the replay, and KeystrokeWindow and
	// KeystrokeHop by Window and Hop.
	Guard guard.Config `json:"-"`
	// Model configures the user models; Fed the federated training of the global autoencoder.
	Model models.UserModelConfig `json:"-"`
	Fed   eval.FedConfig
	// Privacy, when enabled, replaces the plaintext federation by the deployable one
	// (eval.FederatePrivately): the population model from simulated DP rounds, no global
	// autoencoder.
	Privacy eval.PrivacyConfig
	// Progress, when set, is told of progress through each stage.
	Progress func(stage string, done, total int) `json:"-"`
}

func (c *Config) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("takeover: no data directory")
	}
	if c.Window == 0 {
		c.Window = 50
	}
	if c.Hop == 0 {
		c.Hop = max(c.Window/10, 1)
	}
	if c.Enrol == 0 {
		c.Enrol = 5
	}
	if c.Stride == 0 {
		c.Stride = max(c.Window/5, 1)
	}
	if c.Impostors == 0 {
		c.Impostors = 5
	}
	if c.Start == "" {
		c.Start = StartEstablished
	}
	switch {
	case c.Window < 10 || c.Window > guard.MaxWindow:
		return fmt.Errorf("takeover: window of %d keystrokes, want 10..%d", c.Window, guard.MaxWindow)
	case c.Hop < 1 || c.Hop > c.Window:
		return fmt.Errorf("takeover: hop of %d keystrokes, want 1..%d (the window)", c.Hop, c.Window)
	case c.Enrol < 1 || c.Enrol > 1000:
		return fmt.Errorf("takeover: %d enrolment windows, want 1..1000", c.Enrol)
	case c.Stride < 1 || c.Stride > c.Window:
		return fmt.Errorf("takeover: stride %d, want 1..%d (the window)", c.Stride, c.Window)
	case c.Skip < 0 || c.Users < 0 || c.Background < 0:
		return fmt.Errorf("takeover: negative participant selection (skip %d, users %d, background %d)", c.Skip, c.Users, c.Background)
	case c.Impostors < 1 || c.Impostors > 1000:
		return fmt.Errorf("takeover: %d impostors per participant, want 1..1000", c.Impostors)
	case c.Start != StartEstablished && c.Start != StartNew:
		return fmt.Errorf("takeover: start %q, want %q or %q", c.Start, StartEstablished, StartNew)
	}
	var err error
	if c.Model, err = c.Model.WithDefaults(); err != nil {
		return err
	}
	if c.Fed, err = c.Fed.WithDefaults(); err != nil {
		return err
	}
	if c.Privacy, err = c.Privacy.WithDefaults(); err != nil {
		return err
	}
	c.Guard.KeystrokeWindow, c.Guard.KeystrokeHop = c.Window, c.Hop
	return startGuard(&c.Guard, c.Start)
}

func (c *Config) progress(stage string) func(done, total int) {
	if c.Progress == nil {
		return nil
	}
	return func(done, total int) { c.Progress(stage, done, total) }
}

// Result is the outcome of a takeover evaluation.
type Result struct {
	Config Config
	// Protocol describes in words what was trained on what and what was replayed.
	Protocol string
	// Files is the number of participant files selected; Users the participants evaluated.
	Files, Users int
	// Read counts the rows read and kept, and what was dropped, by reason (rows, keystrokes,
	// windows, participants).
	Read keystroke.ReadStats
	// HoldsCleared counts held-out keystrokes replayed without a hold time: their release was
	// unknown or implausible (the guard rejects holds beyond guard.MaxKeyHold).
	HoldsCleared int
	// Genuine sessions: each participant's own typing after enrolment.
	Genuine GenuineOutcome
	// Takeovers: each participant's typing, then another's.
	Takeover TakeoverOutcome
	// Durations of the stages.
	LoadTime, FederationTime, ReplayTime time.Duration
	// Private reports the simulated DP round when Config.Privacy is enabled.
	Private *eval.PrivateRounds `json:",omitempty"`
}

// GenuineOutcome counts what genuine sessions went through.
type GenuineOutcome struct {
	Sessions   int `json:"sessions"`
	Keystrokes int `json:"keystrokes"`
	// Challenges counts every challenge issued (each passed at once, as the owner would) and
	// every termination; Terminations the terminations among them; Sessions challenged the
	// sessions with at least one.
	Challenges         int `json:"challenges"`
	Terminations       int `json:"terminations"`
	SessionsChallenged int `json:"sessions_challenged"`
	// Per1000 is Challenges per 1,000 genuine keystrokes.
	Per1000 float64 `json:"challenges_per_1000"`
}

// TakeoverOutcome says how fast takeovers were challenged.
type TakeoverOutcome struct {
	Sessions int `json:"sessions"`
	// Missed counts takeovers never challenged before the other participant's typing ran out;
	// MissedShare is their share.
	Missed      int     `json:"missed"`
	MissedShare float64 `json:"missed_share"`
	// Quantiles of the keystrokes typed by the other participant until the session was
	// challenged (the keystroke that brought the challenge included), over all takeovers with
	// missed ones counted as never: NaN where the quantile falls among the missed. (Not in
	// JSON, which has no NaN; callers render them.)
	Median, P25, P75, P90 float64 `json:"-"`
	// MedianDetected is the median over challenged takeovers only.
	MedianDetected float64 `json:"-"`
	// Tiers counts the tier each challenged takeover reached first.
	Tiers map[string]int `json:"tiers"`
	// PrefixChallenges counts challenges of the genuine typing before the takeover point
	// (passed at once); their keystrokes are not counted in GenuineOutcome. PrefixTerminated
	// counts sessions terminated before the takeover point, which are left out of Sessions.
	PrefixChallenges int `json:"prefix_challenges"`
	PrefixTerminated int `json:"prefix_terminated"`
	// ImpostorKeystrokes is the other participants' typing replayed.
	ImpostorKeystrokes int `json:"impostor_keystrokes"`
	// ToChallenge lists the keystrokes to challenge of every challenged takeover.
	ToChallenge []int `json:"-"`
}
