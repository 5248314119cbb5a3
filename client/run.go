package client

import (
	"context"
	"errors"
	"time"

	"github.com/vigilauth/vigil/dp"
)

// Run polls for tasks and carries them out until ctx ends, backing off on errors.
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
