package coordinator

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
)

// Bounds on enrolments that have been answered but not yet taken up. Enroll verifies the
// device record and its proof and issues the certificate, but a device enters the registry
// (N, the sampling population, the state file) only with its first GetTask: a device that
// never received or accepted its certificate is then never counted in N nor sampled into a
// round it cannot answer. Until then its enrolment waits here, in memory only.
const (
	// maxPendingEnrolments caps the waiting enrolments, so that callers who enrol and never
	// come back cannot grow the coordinator's memory (each holds a device record of a few
	// kilobytes: 10,000 hold about 40 MB at most). When it is full Enroll answers
	// ResourceExhausted until some are taken up or expire.
	maxPendingEnrolments = 10000
	// pendingEnrolmentTTL is how long an enrolment waits for the device's first GetTask. Real
	// devices poll within seconds of enrolling; one that comes later, like one whose enrolment
	// the coordinator forgot in a restart, is answered UNKNOWN_DEVICE and enrols again, which
	// the device record allows as often as needed.
	pendingEnrolmentTTL = 10 * time.Minute
)

// pendingEnrolment is an answered enrolment waiting for the device's first call.
type pendingEnrolment struct {
	dev     device
	expires time.Time
}

// expireEnrolmentsLocked forgets the waiting enrolments that have expired. c.mu must be held.
func (c *Coordinator) expireEnrolmentsLocked(now time.Time) {
	for id, p := range c.enrolling {
		if !now.Before(p.expires) {
			delete(c.enrolling, id)
		}
	}
}

// enrolmentRoomLocked refuses an enrolment of a device that is neither registered nor waiting
// when maxPendingEnrolments are already waiting. c.mu must be held.
func (c *Coordinator) enrolmentRoomLocked(id string, now time.Time) error {
	if _, ok := c.devices[id]; ok {
		return nil
	}
	if _, ok := c.enrolling[id]; ok {
		return nil
	}
	if len(c.enrolling) < maxPendingEnrolments {
		return nil
	}
	c.expireEnrolmentsLocked(now)
	if len(c.enrolling) < maxPendingEnrolments {
		return nil
	}
	return reject(codes.ResourceExhausted, ReasonTooManyEnrolments, fmt.Sprintf(
		"%d enrolments are waiting for their devices' first call; enrol again later", len(c.enrolling)))
}

// admit moves a device whose enrolment is waiting into the registry, on its first call after
// enrolling, and reports whether it did. The device is in the registry, and durably so, when
// admit returns true; a device neither registered nor waiting is left to the caller to refuse.
func (c *Coordinator) admit(ctx context.Context, id string) (bool, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	if _, known := c.devices[id]; known {
		c.mu.Unlock()
		return false, nil
	}
	p, ok := c.enrolling[id]
	if !ok || !now.Before(p.expires) {
		delete(c.enrolling, id)
		c.mu.Unlock()
		return false, nil
	}
	delete(c.enrolling, id)
	d := p.dev
	d.enrolled = now
	c.devices[id] = d
	delete(c.removed, id)
	c.registryChangedLocked(id)
	c.dirty = true
	n, cm := len(c.devices), c.pending
	c.mu.Unlock()
	c.metrics.enrolled.Set(float64(n))
	if err := c.durable(ctx, cm); err != nil {
		// The device is in the registry in memory and reaches the disk with the next write
		// (unless that fails, which stops Run); its next call finds it registered.
		return false, reject(codes.Unavailable, ReasonNotDurable, "enrolment could not be made durable: "+err.Error())
	}
	c.log.Info("device enrolled", "device", id, "region", d.region, "enrolled", n, "recorded", d.record != nil)
	c.notify()
	return true, nil
}

// pendingLocked counts the enrolments waiting for their devices' first call that have not
// expired; expired ones are forgotten only when room is needed. c.mu must be held.
func (c *Coordinator) pendingLocked(now time.Time) int {
	n := 0
	for _, p := range c.enrolling {
		if now.Before(p.expires) {
			n++
		}
	}
	return n
}

// registerPendingMetric exports the waiting enrolments as vigil_pending_enrolments, counted when
// scraped: they leave by expiry as well as by the device's first call, and expiry has no event.
func (c *Coordinator) registerPendingMetric() error {
	return c.cfg.Metrics.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vigil_pending_enrolments",
		Help: "Enrolments answered and waiting for the device's first call, which enters it in the registry.",
	}, func() float64 {
		c.mu.Lock()
		defer c.mu.Unlock()
		return float64(c.pendingLocked(c.cfg.Now()))
	}))
}
