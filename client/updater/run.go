package updater

import (
	"context"
	"errors"
	"time"
)

// Run polls the store at once and then every Config.Interval, and scores every window received
// from windows (see Observe), until ctx ends; it returns ctx's error. report, if not nil, is
// called with every event other than NoChange and with every error (a failed poll is retried
// at the next interval; a bad window is skipped), always from Run's goroutine. Windows that
// arrive before any model is installed are dropped without a report.
//
// Polls run in their own goroutine, one at a time, each bounded by Config.PollTimeout, so a
// store that is slow or stuck never holds up the scoring of live windows; a tick that comes
// while a poll is still running is skipped.
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
	results := make(chan result, 1)
	polling := false
	poll := func() {
		polling = true
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
				<-results // Poll returns promptly once ctx is done
			}
			return ctx.Err()
		case r := <-results:
			polling = false
			if ctx.Err() == nil {
				emit(r.ev, r.err)
			}
		case <-tick.C:
			if !polling {
				poll()
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
