package client

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
	"github.com/vigilauth/vigil/release"
)

// PolicyGuard holds every task to the privacy policy signed by the privacy office (the root of
// trust's privacy role), which the coordinator cannot sign. Without it a coordinator could ask
// for m_min = 2^32-1, shrinking the device's noise zC/sqrt(m_min - t_dev) to almost nothing
// while the device's ledger charged the full z, or ask for z = 0 outright.
//
// The guard remembers the newest policy it has verified and refuses an older one, so a
// coordinator cannot roll a device back to a laxer policy either.
type PolicyGuard struct {
	root *release.Root
	now  func() time.Time

	mu     sync.Mutex
	follow func() []byte // Follow's source of newer roots, or nil
	newest *release.PrivacyPolicy
	// floor is the newest version accepted, under the privacy role's keys (privacyRole).
	floor versionFloor
}

// PolicyFloorFile is the file in a device's directory that records the newest privacy policy
// version it has accepted.
const PolicyFloorFile = "privacy-policy.version"

// PersistTo makes the guard's floor survive restarts: it reads the newest policy version
// recorded in path (none if the file is missing) and records there, durably, each newer
// version it accepts before accepting it. Without it a restarted device took an older, laxer
// policy again until that one expired. The record names the privacy role's keys the floor was
// set under: a root that changes them resets it, or a thief of the retired key, having
// signed a policy numbered 2^40, would keep devices from ever accepting the office's next.
func (g *PolicyGuard) PersistTo(path string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.floor.persistTo(path); err != nil {
		return fmt.Errorf("client: privacy policy floor: %w", err)
	}
	return nil
}

// privacyRole names the privacy role's keys and threshold in root.
func privacyRole(root *release.Root) string { return roleFingerprint(root.Roles.Privacy) }

// trusteesRole names the trustees role's keys and threshold in root.
func trusteesRole(root *release.Root) string { return roleFingerprint(root.Roles.Trustees) }

func roleFingerprint(role any) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%v", role))
	return hex.EncodeToString(sum[:16])
}

// NewPolicyGuard returns a guard that verifies policies under root, the device's pinned root
// of trust, at the time now gives (default time.Now).
func NewPolicyGuard(root *release.Root, now func() time.Time) (*PolicyGuard, error) {
	if root == nil {
		return nil, errors.New("client: a policy guard needs the pinned root of trust")
	}
	if now == nil {
		now = time.Now
	}
	return &PolicyGuard{root: root, now: now}, nil
}

// Check verifies the policy the task carries and that the task's privacy settings are inside
// it. It returns an error wrapping release.ErrPolicy for a task outside the policy.
func (g *PolicyGuard) Check(t *vigilv1.Task) error {
	doc := t.GetPolicy()
	if len(doc) == 0 {
		return fmt.Errorf("%w: the task carries no signed privacy policy", release.ErrPolicy)
	}
	root := g.trusted()
	p, err := root.VerifyPrivacyPolicy(doc, g.now())
	if err != nil {
		return fmt.Errorf("the task's privacy policy does not verify: %w", err)
	}
	role := privacyRole(root)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.floor.under(role) {
		g.newest = nil
	}
	if p.Version < g.floor.version {
		return fmt.Errorf("%w: the task carries privacy policy v%d, this device has seen v%d", release.ErrPolicy, p.Version, g.floor.version)
	}
	pc := t.GetPrivacy()
	if err := p.Check(release.Task{
		NoiseMultiplier: pc.GetNoiseMultiplier(), ClipNorm: pc.GetClipNorm(),
		MinParticipants: pc.GetMinParticipants(), ToleratedDevices: pc.GetToleratedDevices(),
	}); err != nil {
		return err
	}
	if err := g.floor.raise(p.Version, role); err != nil {
		return fmt.Errorf("client: recording privacy policy v%d: %w", p.Version, err)
	}
	g.newest = p
	return nil
}

// Follow makes the guard verify policies under the newest root src returns whenever it is
// newer than the one held: the root the device's updaters moved forward to, rotation by
// rotation from the pinned one (src must return only such a verified root). Without it, a
// rotation that retired a stolen privacy key left devices trusting that key, and refusing
// policies signed by its successor.
func (g *PolicyGuard) Follow(src func() []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.follow = src
}

// trusted returns the root to verify policies under: the newest src of Follow gave, if newer
// than the pinned one.
func (g *PolicyGuard) trusted() *release.Root {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.follow != nil {
		if env := g.follow(); len(env) > 0 {
			if r, err := release.ParseTrustedRoot(env); err == nil && r.Version > g.root.Version {
				g.root = r
			}
		}
	}
	return g.root
}

// Policy returns the newest policy the guard has accepted, or nil.
func (g *PolicyGuard) Policy() *release.PrivacyPolicy {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.newest
}
