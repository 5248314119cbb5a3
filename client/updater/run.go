package updater

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Run polls the store at once and then every Config.Interval, and scores every window received
// from windows (see Observe), until ctx ends; it returns ctx's error. report, if not nil, is
// called with every event other than NoChange and with every error (a failed poll is retried
// at the next interval; a bad window is skipped), always from Run's goroutine. After one or
// more failed polls (or one stuck past its deadline), the first that succeeds is reported as a
// Recovered event, before its own event if it has one: a failure is thus never the last word
// on a store that is readable again. Windows that arrive before any model is installed are
// dropped without a report.
//
// Polls run in their own goroutine, one at a time, each bounded by Config.PollTimeout, so a
// store that is slow or stuck never holds up the scoring of live windows; a tick that comes
// while a poll is still running is skipped. A poll still running twice its PollTimeout after it
// started (a store read that ignores its deadline, as a hung network mount does) is reported
// once as an error wrapping ErrPollStuck. When ctx ends, Run waits for a running poll at most
// stopGrace and then returns anyway, leaving the poll to finish on its own.
func (u *Updater) Run(ctx context.Context, windows <-chan []float64, report func(Event, error)) error {
	emit := func(ev Event, err error) {
		if report != nil && (err != nil || ev.Kind != NoChange) {
			report(ev, err)
		}
	}
	type result struct {
		ev  Event
		err error
	}
	// Buffered: a poll left running when Run returns still ends, and is not kept waiting.
	results := make(chan result, 1)
	polling, stuck, failed := false, false, false
	var started time.Time
	poll := func() {
		polling, stuck, started = true, false, time.Now()
		go func() {
			ev, err := u.Poll(ctx)
			results <- result{ev, err}
		}()
	}
	tick := time.NewTicker(u.cfg.Interval)
	defer tick.Stop()
	poll()
	for {
		select {
		case <-ctx.Done():
			if polling {
				// Poll returns promptly once ctx is done, unless a store read ignores its
				// context: a review found `vigil agent` still running minutes after SIGTERM,
				// waiting for a read of a FIFO in a directory store.
				stop := time.NewTimer(stopGrace)
				select {
				case <-results:
				case <-stop.C:
				}
				stop.Stop()
			}
			return ctx.Err()
		case r := <-results:
			polling = false
			if ctx.Err() != nil {
				continue
			}
			if r.err != nil {
				failed = true
				emit(r.ev, r.err)
				continue
			}
			if failed {
				failed = false
				emit(Event{Kind: Recovered, Version: u.Status().Current}, nil)
			}
			emit(r.ev, nil)
		case <-tick.C:
			switch {
			case !polling:
				poll()
			case !stuck && time.Since(started) > 2*u.cfg.PollTimeout:
				stuck, failed = true, true
				emit(Event{}, fmt.Errorf("%w: started %v ago, with a deadline of %v; no other poll starts until it returns",
					ErrPollStuck, time.Since(started).Round(time.Millisecond), u.cfg.PollTimeout))
			}
		case w, ok := <-windows:
			if !ok {
				windows = nil
				continue
			}
			ev, err := u.Observe(w)
			if errors.Is(err, ErrNoModel) {
				continue // nothing to score before the first install; not worth a report
			}
			emit(ev, err)
		}
	}
}

// stopGrace is how long Run waits, once its context has ended, for a poll still running.
const stopGrace = 2 * time.Second
