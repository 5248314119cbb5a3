package updater

import (
	"context"
	"time"
)

// Run polls the store at once and then every Config.Interval, and scores every window received
// from windows (see Observe), until ctx ends; it returns ctx's error. report, if not nil, is
// called with every event other than NoChange and with every error (a failed poll is retried
// at the next interval; a bad window is skipped).
func (u *Updater) Run(ctx context.Context, windows <-chan []float64, report func(Event, error)) error {
	emit := func(ev Event, err error) {
		if report != nil && (err != nil || ev.Kind != NoChange) {
			report(ev, err)
		}
	}
	tick := time.NewTicker(u.cfg.Interval)
	defer tick.Stop()
	emit(u.Poll(ctx))
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			emit(u.Poll(ctx))
		case w, ok := <-windows:
			if !ok {
				windows = nil
				continue
			}
			emit(u.Observe(w))
		}
	}
}
