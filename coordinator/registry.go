package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/pki"
)

// Revocations is what the coordinator needs of the deployment's revocation list: whether, and
// since when, a device is revoked, and revoking one it removes. *pki.Revocations implements it.
type Revocations interface {
	// Generation changes whenever the list changes; Identities is read only then.
	Generation(now time.Time) uint64
	Identities(now time.Time) ([]pki.RevokedIdentity, error)
	RevokeIdentity(id pki.Identity, now time.Time) error
}

var _ Revocations = (*pki.Revocations)(nil)

// ErrUnknownDevice is returned by RemoveDevice for a device that is not enrolled.
var ErrUnknownDevice = errors.New("coordinator: no such device")

// removal is why and when a device left the registry, for the operator's status.
type removal struct {
	at     time.Time
	reason string
}

// pruneRevokedLocked removes every enrolled device whose identity was revoked at or after the
// device record (or, without one, the enrolment) it is registered with, so that it is neither
// counted in N nor sampled, and, with the tier, so that frontends refuse its updates: a
// frontend on another machine checks certificates against its own copy of the revocation list,
// which `vigil pki revoke` here does not reach, but it checks every update against the
// registry in the tier. A device that registered again after its revocation keeps its place.
// It runs at every step but reads the list only when it changed (a new device is admitted
// only with a record issued after any revocation of it), then costs one look per revoked
// identity. c.mu must be held. A revocation list that cannot be read removes nobody: the gRPC
// guard refuses every call meanwhile, so such a round fails instead of running on a wrong N.
func (c *Coordinator) pruneRevokedLocked(now time.Time) {
	if c.cfg.Revocations == nil {
		return
	}
	gen := c.cfg.Revocations.Generation(now)
	if gen == c.revocationsSeen && c.revocationsSeen != 0 {
		return
	}
	revoked, err := c.cfg.Revocations.Identities(now)
	if err != nil {
		if !c.revocationsUnreadable {
			c.log.Warn("revocation list unreadable; revoked devices may still be sampled", "err", err)
		}
		c.revocationsUnreadable = true
		return
	}
	c.revocationsUnreadable, c.revocationsSeen = false, gen
	for _, r := range revoked {
		d, ok := c.devices[r.Identity.ID]
		if r.Identity.Role != pki.RoleDevice || !ok {
			continue
		}
		since := d.issued
		if since.IsZero() {
			since = d.enrolled
		}
		if !r.Revoked.Before(since) {
			c.removeLocked(r.Identity.ID, now, "revoked at "+r.Revoked.UTC().Format(time.RFC3339))
		}
	}
}

// removeLocked drops a device from the registry. c.mu must be held.
func (c *Coordinator) removeLocked(id string, now time.Time, reason string) {
	delete(c.devices, id)
	delete(c.lastSeen, id)
	delete(c.installed, id)
	c.removed[id] = removal{at: now, reason: reason}
	c.registryChangedLocked(id)
	c.dirty = true
	c.metrics.enrolled.Set(float64(len(c.devices)))
	c.metrics.removed.Inc()
	c.log.Info("device removed from the registry", "device", id, "reason", reason, "enrolled", len(c.devices))
}

// RemoveDevice takes a device out of the registry and, when the coordinator has a revocation
// list, revokes it, so that it can neither be sampled nor come back with its certificate. The
// open round, if it sampled the device, still counts an update the device already sent. The
// removal is durable when RemoveDevice returns.
func (c *Coordinator) RemoveDevice(ctx context.Context, id, reason string) error {
	now := c.cfg.Now()
	c.mu.Lock()
	_, enrolled := c.devices[id]
	c.mu.Unlock()
	if !enrolled {
		// Refused before anything is revoked: a mistyped ID must not revoke some other
		// identity that is yet to enrol.
		return fmt.Errorf("%w: %q", ErrUnknownDevice, id)
	}
	if c.cfg.Revocations != nil {
		if err := c.cfg.Revocations.RevokeIdentity(pki.Device(id), now); err != nil {
			return fmt.Errorf("coordinator: revoke %q: %w", id, err)
		}
	}
	c.mu.Lock()
	if _, ok := c.devices[id]; !ok {
		c.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrUnknownDevice, id)
	}
	if reason == "" {
		reason = "removed by the operator"
	}
	c.removeLocked(id, now, reason)
	cm := c.pending
	c.mu.Unlock()
	c.notify()
	return c.durable(ctx, cm)
}

// seen records that a device called, for the operator's status.
func (c *Coordinator) seen(id string) {
	now := c.cfg.Now()
	c.mu.Lock()
	if _, ok := c.devices[id]; ok {
		c.lastSeen[id] = now
		if c.registry != nil {
			c.registry.seenDirt = true
		}
	}
	c.mu.Unlock()
}
