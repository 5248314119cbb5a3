package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigilauth/vigil/dp"
	"github.com/vigilauth/vigil/pki"
	vigilv1 "github.com/vigilauth/vigil/proto/vigil/v1"
)

// ErrRefused reports that the coordinator refused the device in a way retrying cannot change:
// its certificate is revoked (an operator removing a device revokes it), or names no device.
// A device the coordinator does not know enrols again instead: the coordinator may have lost
// its registry.
var ErrRefused = errors.New("client: the coordinator refuses this device")

// final returns an error wrapping ErrRefused if err can never succeed by retrying, or nil.
func final(err error) error {
	switch r := vigilv1.Reason(err); r {
	case pki.ReasonRevoked:
		return fmt.Errorf("%w: its certificate is revoked (REVOKED); enrol again with a new token from the enrolment authority: %w", ErrRefused, err)
	case pki.ReasonWrongRole, pki.ReasonBadIdentity:
		return fmt.Errorf("%w (%s): %w", ErrRefused, r, err)
	}
	return nil
}

// shedding reports whether err is a server refusing a call for its load (SERVER_BUSY, or
// TOO_MANY_CALLS for this device's calls at once), which sending again shortly resolves.
func shedding(err error) bool {
	r := vigilv1.Reason(err)
	return r == pki.ReasonServerBusy || r == pki.ReasonTooManyCalls
}

// Run polls for tasks and carries them out until ctx ends, backing off on errors. It stops
// with an error wrapping ErrRefused when the coordinator refuses the device for good.
func (a *Agent) Run(ctx context.Context) error { return a.RunRounds(ctx, 0, nil) }

// RunRounds is Run that returns nil once the device has contributed to rounds rounds (0: no
// limit), calling done, if not nil, after each contribution.
func (a *Agent) RunRounds(ctx context.Context, rounds int, done func(Result)) error {
	backoff := 100 * time.Millisecond
	contributed := 0
	for {
		res, err := a.Poll(ctx)
		wait := res.RetryAfter
		if err == nil && res.Round != 0 {
			contributed++
			if done != nil {
				done(res)
			}
			if rounds > 0 && contributed >= rounds {
				return nil
			}
		}
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, dp.ErrBudgetExhausted):
			// The device stops taking part for good: its own privacy budget is spent.
			return err
		case final(err) != nil:
			return final(err)
		case shedding(err):
			// The server sheds load as designed; a fleet sees many of these in a busy round.
			a.cfg.Logger.Info("server busy; sending again", "device", a.cfg.DeviceID, "err", err, "retry_in", backoff)
			wait = backoff
			backoff = min(2*backoff, 5*time.Second)
		case err != nil:
			a.cfg.Logger.Warn("poll failed", "device", a.cfg.DeviceID, "err", err, "retry_in", backoff)
			wait = backoff
			backoff = min(2*backoff, 5*time.Second)
		default:
			backoff = 100 * time.Millisecond
		}
		if wait <= 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
