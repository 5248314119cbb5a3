package updater

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestRunPicksUpAndPromotes runs the device loop: it installs v1 at once, picks up v2 when it
// appears, scores it on the windows it receives and promotes it.
func TestRunPicksUpAndPromotes(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, shifted(base, 0.5))
	d := newDevice(t, tr, st)
	d.cfg.Interval = 10 * time.Millisecond
	u := d.open()

	events := make(chan Event, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	win := make(chan []float64)
	done := make(chan error, 1)
	go func() {
		done <- u.Run(ctx, win, func(ev Event, err error) {
			if err != nil {
				t.Errorf("run: %v", err)
				return
			}
			events <- ev
		})
	}()
	next := func() Event {
		select {
		case ev := <-events:
			return ev
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
			return Event{}
		}
	}
	if ev := next(); ev.Kind != Installed || ev.Version != 1 {
		t.Fatalf("first event %+v", ev)
	}
	tr.publishModel(t, st, 2, base)
	if ev := next(); ev.Kind != Staged || ev.Version != 2 {
		t.Fatalf("second event %+v", ev)
	}
	for _, w := range windows(10) {
		win <- w
	}
	if ev := next(); ev.Kind != Promoted || ev.Version != 2 {
		t.Fatalf("third event %+v", ev)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

// TestConcurrentPollAndObserve polls (staging ever newer releases) while another goroutine
// scores windows and reads the status; run it with -race.
func TestConcurrentPollAndObserve(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	base := baseParams(t)
	tr.publishModel(t, st, 1, base)
	d := newDevice(t, tr, st)
	d.cfg.ShadowWindows = 3
	u := d.open()
	mustPoll(t, u, Installed, 1)
	stop := make(chan struct{})
	observed := make(chan error, 1)
	go func() {
		ws := windows(50)
		for i := 0; ; i++ {
			select {
			case <-stop:
				observed <- nil
				return
			default:
			}
			if _, err := u.Observe(ws[i%len(ws)]); err != nil {
				observed <- err
				return
			}
			u.Status()
		}
	}()
	for v := uint64(2); v <= 6; v++ {
		tr.publishModel(t, st, v, shifted(base, 0.01*float64(v)))
		if ev, err := u.Poll(context.Background()); err != nil || ev.Kind != Staged {
			t.Fatalf("v%d: %+v, %v", v, ev, err)
		}
	}
	close(stop)
	if err := <-observed; err != nil {
		t.Fatal(err)
	}
	// The floor follows what was promoted, never what was only staged.
	if s := u.Status(); s.Verified != s.Current || s.Current == 0 || max(s.Current, s.Candidate) != 6 {
		t.Fatalf("status %+v", s)
	}
	u = d.open()
	checkClean(t, d.cfg.Dir, u)
}

// TestRunQuietBeforeFirstInstall: windows that arrive before any model is installed are not
// reported as errors; a device's first run printed "release check failed: no model
// installed" right before installing v1 (a docs review).
func TestRunQuietBeforeFirstInstall(t *testing.T) {
	tr := newTrust(t)
	d := newDevice(t, tr, newFS(t)) // nothing published
	d.cfg.Interval = time.Hour
	u := d.open()
	ctx, cancel := context.WithCancel(context.Background())
	win := make(chan []float64)
	done := make(chan error, 1)
	var reported []error
	go func() {
		done <- u.Run(ctx, win, func(_ Event, err error) {
			if errors.Is(err, ErrNoModel) {
				reported = append(reported, err)
			}
		})
	}()
	for _, w := range windows(5) {
		win <- w
	}
	cancel()
	<-done
	if len(reported) > 0 {
		t.Fatalf("%d windows before the first install reported: %v", len(reported), reported[0])
	}
}
