package updater

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigilauth/vigil/release"
	"github.com/vigilauth/vigil/store"
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

// hangingStore is a store whose reads ignore their context until released, as a read from a
// hung network mount does.
type hangingStore struct {
	store.Store
	release chan struct{}
}

func (h *hangingStore) Get(ctx context.Context, key string) ([]byte, error) {
	<-h.release
	return h.Store.Get(ctx, key)
}

// TestRunReturnsWhileAPollIsStuck: a poll whose store read
// ignores its deadline (a hung mount under a directory store) held Run past its context's end
// for as long as the read, so `vigil agent` did not exit on SIGTERM; and nothing was reported.
// Run now reports the stuck poll once, and returns at most stopGrace after its context ends.
func TestRunReturnsWhileAPollIsStuck(t *testing.T) {
	tr := newTrust(t)
	st := newFS(t)
	tr.publishModel(t, st, 1, baseParams(t))
	h := &hangingStore{Store: st, release: make(chan struct{})}
	d := newDevice(t, tr, h)
	d.cfg.Interval, d.cfg.PollTimeout = 10*time.Millisecond, 50*time.Millisecond
	u := d.open()
	reports := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- u.Run(ctx, nil, func(_ Event, err error) {
			if err != nil {
				reports <- err
			}
		})
	}()
	select {
	case err := <-reports:
		if !errors.Is(err, ErrPollStuck) {
			t.Fatalf("report: %v, want ErrPollStuck", err)
		}
		t.Logf("reported: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("nothing reported 10 s into a poll with a 50 ms PollTimeout")
	}
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
		t.Logf("Run returned %v after its context ended", time.Since(start).Round(time.Millisecond))
	case <-time.After(stopGrace + 3*time.Second):
		t.Fatal("Run did not return after its context ended, a poll still stuck")
	}
	// The read ends and the poll left behind finishes on its own; this one waits for it
	// (pollMu), so that it is done before TempDir's cleanup.
	close(h.release)
	if _, err := u.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestRunReportsRecovery: a successful poll was never reported
// (NoChange), so whoever printed failures when they changed could not tell a store readable
// again, and a second outage with the same message went unsaid. Run now reports the first
// successful poll after failed ones as Recovered.
func TestRunReportsRecovery(t *testing.T) {
	tr := newTrust(t)
	fs := newFS(t)
	st := &storeFS{fs}
	tr.publishModel(t, fs, 1, baseParams(t))
	d := newDevice(t, tr, fs)
	d.cfg.Interval = 10 * time.Millisecond
	u := d.open()
	type report struct {
		kind EventKind
		err  error
	}
	reports := make(chan report, 64)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- u.Run(ctx, nil, func(ev Event, err error) { reports <- report{ev.Kind, err} })
	}()
	next := func() report {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case <-time.After(30 * time.Second):
			t.Fatal("no report")
			return report{}
		}
	}
	if r := next(); r.kind != Installed || r.err != nil {
		t.Fatalf("first report %+v", r)
	}
	latest := release.LatestKey(testModel)
	genuine, err := fs.Get(ctx, latest)
	if err != nil {
		t.Fatal(err)
	}
	for outage := 1; outage <= 2; outage++ {
		st.put(t, latest, []byte("junk"))
		if r := next(); r.err == nil {
			t.Fatalf("outage %d: %+v, want the failure", outage, r)
		}
		st.put(t, latest, genuine)
		// Failures may come again before the store is read whole; the recovery follows them.
		r := next()
		for r.err != nil {
			r = next()
		}
		if r.kind != Recovered {
			t.Fatalf("outage %d over: %+v, want Recovered", outage, r)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}
