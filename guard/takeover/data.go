package takeover

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/vigilauth/vigil/guard"
	"github.com/vigilauth/vigil/guard/behaviour"
	"github.com/vigilauth/vigil/models"
	"github.com/vigilauth/vigil/models/keystroke"
)

// Reasons a row, keystroke, window or participant is left out, on top of the reader's reasons
// for dropping rows.
const (
	DropSparseWindow  = "enrolment window with too few usable timings"
	DropFewWindows    = "participant with too little typing to enrol"
	DropShortHeldOut  = "participant with under two windows of typing after enrolment"
	DropUnreadable    = "unreadable participant file"
	DropNoKeyCode     = "keystroke without a key code (code 0), which the guard rejects"
	DropPressBackward = "keystroke pressed before the previous one (across test sections)"
)

// participant is one person's typing, split for the protocol: the enrolment, and the typing
// after it, cleaned for the guard, to replay. Keystrokes whose release is unknown or lies
// beyond guard.MaxKeyHold are replayed with the release at the press, which the models read as
// an unknown hold time; holdless counts them.
type participant struct {
	id       string
	enrol    models.Enrolment
	held     []keystroke.Keystroke
	holdless int
}

// loadParticipants reads the files and splits every participant's typing. Unreadable files
// and participants with too little typing are counted, not fatal.
func loadParticipants(ctx context.Context, files []string, cfg *Config) ([]participant, keystroke.ReadStats, error) {
	type loaded struct {
		p     participant
		stats keystroke.ReadStats
		ok    bool
	}
	out := make([]loaded, len(files))
	err := forEach(ctx, len(files), cfg.Workers, cfg.progress("read"), func(i int) error {
		raw, st, err := keystroke.ReadAaltoFile(files[i])
		out[i].stats = st
		if err != nil {
			out[i].stats.Drop(DropUnreadable, 1)
			return nil
		}
		out[i].p, out[i].ok = split(raw, &out[i].stats, cfg)
		return nil
	})
	var total keystroke.ReadStats
	var ps []participant
	for _, l := range out {
		total.Add(l.stats)
		if l.ok {
			ps = append(ps, l.p)
		}
	}
	if err != nil {
		return nil, total, err
	}
	if len(ps) < 2 {
		return nil, total, fmt.Errorf("takeover: %d usable participants, need at least 2 (dropped: %v)", len(ps), total.Dropped)
	}
	return ps, total, nil
}

// split enrols a participant on their first typing and cleans the rest for the guard.
func split(raw keystroke.Participant, st *keystroke.ReadStats, cfg *Config) (participant, bool) {
	p := participant{id: raw.ID}
	ks := raw.Keystrokes()
	enrol, es, err := behaviour.KeystrokeEnrolment(ks, behaviour.EnrolConfig{Window: cfg.Window, Windows: cfg.Enrol, Stride: cfg.Stride})
	if es.Sparse > 0 {
		st.Drop(DropSparseWindow, es.Sparse)
	}
	if err != nil {
		if !errors.Is(err, behaviour.ErrTooFewWindows) {
			st.Drop(DropUnreadable, 1)
		} else {
			st.Drop(DropFewWindows, 1)
		}
		return p, false
	}
	p.enrol = enrol
	var last keystroke.Keystroke
	for i, k := range ks[es.Used:] {
		switch {
		case k.Code == 0:
			st.Drop(DropNoKeyCode, 1)
			continue
		case i > 0 && k.Press < last.Press:
			st.Drop(DropPressBackward, 1)
			continue
		}
		if h, ok := k.Hold(); !ok || h > guard.MaxKeyHold {
			k.Release = 0
			p.holdless++
		}
		p.held = append(p.held, k)
		last = k
	}
	if len(p.held) < 2*cfg.Window {
		st.Drop(DropShortHeldOut, 1)
		return p, false
	}
	return p, true
}

// forEach runs job(0..n-1) on up to workers goroutines (GOMAXPROCS when workers <= 0), stops
// at the first error or when ctx ends, and reports progress after each job. Jobs must write
// only their own results.
func forEach(ctx context.Context, n, workers int, progress func(done, total int), job func(i int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	var mu sync.Mutex
	done := 0
	for i := 0; i < n && gctx.Err() == nil; i++ {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if err := job(i); err != nil {
				return err
			}
			if progress != nil {
				mu.Lock()
				done++
				progress(done, n) // under the lock: progress need not be safe for concurrent use
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}
