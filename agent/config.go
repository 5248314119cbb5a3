package agent

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vigilauth/vigil/agent/attest"
	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/models"
)

// Config configures an Agent. Dir is required; every other zero field means its default.
type Config struct {
	// Dir holds the agent's keys, encrypted state and audit log (created 0700 if absent).
	Dir string
	// Policy is the minimum trust per resource; nil means DefaultPolicy.
	Policy *guard.Policy
	// Global is the federation's global model that personal models are fitted on (the updater's
	// current release); nil means the device learns alone. SetGlobal replaces it at run time.
	Global *models.Global
	// MouseGlobal is the same for users' mouse models: the federation's mouse population (its
	// updater's current release); nil means mouse models learn alone. SetMouseGlobal replaces
	// it at run time.
	MouseGlobal *models.Global
	// Guard configures the session guard (Scorers, Recorder and Clock are the agent's own).
	// Its MaxClockSkew defaults to 30 seconds here, not the guard's 5 minutes: events come from
	// this device's own clock, and a page's script that dates its events ahead gains trust in
	// event time that has not passed.
	Guard guard.Config
	// EnrolWindows is how many disjoint windows of GuardWindow keystrokes enrol a user
	// (default 5, the keystroke protocol's G).
	EnrolWindows int
	// MouseEnrolActions is how many mouse actions (moves, point-and-clicks, drag-and-drops)
	// enrol a user's mouse model (default 1000, about 80 minutes of mouse use): replayed on
	// Balabit (`vigil eval takeover --enrol-actions N`), a model enrolled on 100 actions
	// challenged its owner 4.8 times an hour of mouse use, on 1,000 1.1 times. Until then the
	// session is judged on typing and context alone.
	MouseEnrolActions int
	// HeadInterval is how often a signed head of the audit log is exported (default 1 minute).
	HeadInterval time.Duration
	// SaveInterval is how often changed state is written (default 30 seconds); it is also
	// written when a user's enrolment completes, when a session ends and on shutdown.
	SaveInterval time.Duration
	// Logger receives the agent's operational messages; nil discards them.
	Logger *slog.Logger
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Sites are the web origins ("https://bank.example") whose pages may start sessions on
	// this device themselves, without the install secret, and get decisions signed for their
	// servers (package attest). The device's owner lists them; none by default.
	Sites []string
	// Export also receives every decision and change of standing the audit log does (the SIEM
	// exporter, siem.Exporter); like the audit queue it must never block. Nil for none.
	Export guard.Recorder
}

// DefaultPolicy is the policy of an agent started without one: reading needs little trust,
// a privileged transfer needs an established session.
const DefaultPolicy = "profile.read 40\ndocuments.read 50\ntransfer 70\nadmin 85\n"

func (c *Config) validate() error {
	if c.Dir == "" {
		return fmt.Errorf("agent: Config.Dir is required")
	}
	if c.Policy == nil {
		p, err := guard.ParsePolicy(strings.NewReader(DefaultPolicy))
		if err != nil {
			return err
		}
		c.Policy = p
	}
	if c.Guard.MaxClockSkew == 0 {
		c.Guard.MaxClockSkew = 30 * time.Second
	}
	if c.EnrolWindows == 0 {
		c.EnrolWindows = 5
	}
	if c.EnrolWindows < 1 || c.EnrolWindows > 100 {
		return fmt.Errorf("agent: EnrolWindows %d, want 1..100", c.EnrolWindows)
	}
	if c.MouseEnrolActions == 0 {
		c.MouseEnrolActions = 1000
	}
	if c.MouseEnrolActions < 10 || c.MouseEnrolActions > 10000 {
		return fmt.Errorf("agent: MouseEnrolActions %d, want 10..10000", c.MouseEnrolActions)
	}
	if c.HeadInterval == 0 {
		c.HeadInterval = time.Minute
	}
	if c.SaveInterval == 0 {
		c.SaveInterval = 30 * time.Second
	}
	if c.HeadInterval < 0 || c.SaveInterval < 0 {
		return fmt.Errorf("agent: negative Config.HeadInterval (%v) or Config.SaveInterval (%v)", c.HeadInterval, c.SaveInterval)
	}
	sites := make([]string, len(c.Sites))
	for i, o := range c.Sites {
		origin, err := attest.Origin(o)
		if err != nil {
			return fmt.Errorf("agent: Config.Sites: %w", err)
		}
		sites[i] = origin
	}
	c.Sites = sites
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return nil
}
