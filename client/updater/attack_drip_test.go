package updater

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilauth/vigil/store"
)

// drip is an S3 endpoint that answers every request with a 200, announces a megabyte, and
// sends one byte every 50 ms until the client hangs up.
func drip(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("Content-Length", "1048576")
		w.Header().Set("Last-Modified", time.Now().UTC().Format(http.TimeFormat))
		w.Header().Set("ETag", `"00000000000000000000000000000000"`)
		w.WriteHeader(http.StatusOK)
		for {
			if _, err := w.Write([]byte(" ")); err != nil {
				return
			}
			sent.Add(1)
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &sent
}

// TestAttackDrippingServer is issue 15, item 4: a region's server that drips bytes used to
// hold Poll for 8 s and more, and Run scored no window meanwhile. Now one deadline bounds the
// whole poll, and Run scores live windows while a poll is stuck.
func TestAttackDrippingServer(t *testing.T) {
	srv, sent := drip(t)
	st, err := store.NewMinIO(store.MinIOConfig{
		Endpoint: strings.TrimPrefix(srv.URL, "http://"), AccessKey: "device", SecretKey: "device-secret", Bucket: "vigil-eu",
	})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrust(t)
	// The device has a model from an earlier, healthy poll.
	good := newFS(t)
	tr.publishModel(t, good, 1, baseParams(t))
	d := newDevice(t, tr, good)
	mustPoll(t, d.open(), Installed, 1)
	d.cfg.Store = st
	const timeout = 400 * time.Millisecond
	d.cfg.PollTimeout = timeout
	d.cfg.Interval = 50 * time.Millisecond
	u := d.open()

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	_, err = u.Poll(context.Background())
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	t.Logf("Poll against a dripping server: %v after %v, %d bytes received, %d KiB allocated",
		err, elapsed.Round(time.Millisecond), sent.Load(), (after.TotalAlloc-before.TotalAlloc)>>10)
	if err == nil {
		t.Fatal("Poll succeeded against a dripping server")
	}
	if elapsed > timeout+time.Second {
		t.Fatalf("Poll took %v with a %v deadline", elapsed, timeout)
	}

	// Run goes on scoring while its polls are stuck.
	ctx, cancel := context.WithCancel(context.Background())
	win := make(chan []float64)
	done := make(chan error, 1)
	var pollErrs atomic.Int64
	go func() {
		done <- u.Run(ctx, win, func(ev Event, err error) {
			if err != nil {
				pollErrs.Add(1)
			}
		})
	}()
	ws := windows(20)
	start = time.Now()
	var slowest time.Duration
	for _, w := range ws {
		t0 := time.Now()
		select {
		case win <- w:
		case <-time.After(5 * time.Second):
			t.Fatal("Run stopped taking windows while a poll was stuck")
		}
		slowest = max(slowest, time.Since(t0))
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
	t.Logf("Run: %d windows in %v while polls failed %d times; slowest hand-over %v",
		len(ws), time.Since(start).Round(time.Millisecond), pollErrs.Load(), slowest)
	if slowest > 100*time.Millisecond {
		t.Fatalf("a window waited %v for a stuck poll", slowest)
	}
	if pollErrs.Load() == 0 {
		t.Fatal("no poll ended within the run")
	}
}
