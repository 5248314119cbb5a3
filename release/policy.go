package release

import (
	"fmt"
	"math"
	"time"
)

// PrivacyPolicy is the privacy office's bound on what a coordinator may ask of devices. A
// device holds every task to the newest policy it has verified under the root's privacy role
// and refuses tasks outside it, so a coordinator that lies about m_min or z cannot shrink a
// device's noise below what the policy promises (the noise-inflation attack).
type PrivacyPolicy struct {
	// Version orders policies; devices refuse one older than the newest they have seen.
	Version uint64    `json:"version"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// MinNoiseMultiplier is the floor for a task's z; it is positive: DP cannot be turned off
	// under a policy.
	MinNoiseMultiplier float64 `json:"min_noise_multiplier"`
	// MinParticipants is the floor for a task's m_min.
	MinParticipants uint32 `json:"min_participants"`
	// MaxParticipants is the ceiling for a task's m_min: the noise a device adds shrinks as
	// 1/sqrt(m_min - t_dev), so an unbounded m_min would let a coordinator ask for almost none.
	MaxParticipants uint32 `json:"max_participants"`
	// MaxClipNorm is the ceiling for a task's clip norm C.
	MaxClipNorm float64 `json:"max_clip_norm"`
	// MinToleratedDevices is the floor for a task's t_dev.
	MinToleratedDevices uint32 `json:"min_tolerated_devices"`
}

func (p *PrivacyPolicy) payloadType() string { return TypePrivacyPolicy }

func (p *PrivacyPolicy) validate() error {
	if p.Version == 0 {
		return fmt.Errorf("%w: privacy policy version must be at least 1", ErrMalformed)
	}
	if err := checkTime("privacy policy created", p.Created); err != nil {
		return err
	}
	if err := checkTime("privacy policy expires", p.Expires); err != nil {
		return err
	}
	if !p.Expires.After(p.Created) {
		return fmt.Errorf("%w: privacy policy expires before it is created", ErrMalformed)
	}
	if !(p.MinNoiseMultiplier > 0) || math.IsInf(p.MinNoiseMultiplier, 0) {
		return fmt.Errorf("%w: privacy policy min_noise_multiplier %v, want a positive number", ErrMalformed, p.MinNoiseMultiplier)
	}
	if !(p.MaxClipNorm > 0) || math.IsInf(p.MaxClipNorm, 0) {
		return fmt.Errorf("%w: privacy policy max_clip_norm %v, want a positive number", ErrMalformed, p.MaxClipNorm)
	}
	if p.MinParticipants < 2 || p.MaxParticipants < p.MinParticipants {
		return fmt.Errorf("%w: privacy policy participants %d..%d, want 2 <= min <= max", ErrMalformed, p.MinParticipants, p.MaxParticipants)
	}
	if p.MinToleratedDevices >= p.MinParticipants {
		return fmt.Errorf("%w: privacy policy tolerates %d devices of %d participants, want fewer", ErrMalformed, p.MinToleratedDevices, p.MinParticipants)
	}
	return nil
}

// Task is the privacy part of a task, as a device checks it against a policy.
type Task struct {
	NoiseMultiplier  float64
	ClipNorm         float64
	MinParticipants  uint32
	ToleratedDevices uint32
}

// Check returns nil if the task is inside the policy, or an error of kind ErrPolicy naming
// the first setting outside it.
func (p *PrivacyPolicy) Check(t Task) error {
	switch {
	case !(t.NoiseMultiplier >= p.MinNoiseMultiplier) || math.IsInf(t.NoiseMultiplier, 0):
		return fmt.Errorf("%w: noise multiplier %v is below the policy's floor %v", ErrPolicy, t.NoiseMultiplier, p.MinNoiseMultiplier)
	case !(t.ClipNorm > 0 && t.ClipNorm <= p.MaxClipNorm):
		return fmt.Errorf("%w: clip norm %v is outside the policy's (0, %v]", ErrPolicy, t.ClipNorm, p.MaxClipNorm)
	case t.MinParticipants < p.MinParticipants || t.MinParticipants > p.MaxParticipants:
		return fmt.Errorf("%w: m_min %d is outside the policy's [%d, %d]", ErrPolicy, t.MinParticipants, p.MinParticipants, p.MaxParticipants)
	case t.ToleratedDevices < p.MinToleratedDevices:
		return fmt.Errorf("%w: tolerated devices %d is below the policy's floor %d", ErrPolicy, t.ToleratedDevices, p.MinToleratedDevices)
	case t.ToleratedDevices >= t.MinParticipants:
		return fmt.Errorf("%w: tolerated devices %d leave no honest participant of m_min %d", ErrPolicy, t.ToleratedDevices, t.MinParticipants)
	}
	return nil
}

func decodePrivacyPolicy(payload []byte) (*PrivacyPolicy, error) {
	var p PrivacyPolicy
	if err := unmarshalStrict(payload, &p, "privacy policy"); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// VerifyPrivacyPolicy checks that data is a privacy policy signed by the root's privacy role
// and unexpired at now, and returns it.
func (r *Root) VerifyPrivacyPolicy(data []byte, now time.Time) (*PrivacyPolicy, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, err
	}
	payload, err := r.verifyRole(env, RolePrivacy, TypePrivacyPolicy)
	if err != nil {
		return nil, fmt.Errorf("privacy policy: %w", err)
	}
	p, err := decodePrivacyPolicy(payload)
	if err != nil {
		return nil, err
	}
	if !now.Before(p.Expires) {
		return nil, fmt.Errorf("%w: privacy policy v%d expired at %s", ErrExpired, p.Version, p.Expires.Format(time.RFC3339))
	}
	return p, nil
}
