package release

import (
	"context"
	"errors"
	"sync"
	"time"
)

// regionState is what the outbox knows about one region. Fields after busy are guarded by
// Outbox.mu; busy serialises the passes over the region.
type regionState struct {
	Region
	wake chan struct{}
	busy sync.Mutex

	published      uint64 // newest version the region holds completely
	lastWrite      time.Time
	pointerExpires time.Time
	failures       int // consecutive
	lastErr        error
	lastAttempt    time.Time
	lastSuccess    time.Time
	// retained are old releases object lock kept, with when to try deleting them again; only
	// the goroutine holding busy touches it.
	retained map[uint64]time.Time
}

// OutboxEvent reports one attempt to bring a region up to date.
type OutboxEvent struct {
	Region  string
	Version uint64
	// Refresh is true when only the pointer was due (the region already held the release).
	Refresh bool
	// Err is nil when the region now holds the release with a fresh pointer. With Failures 0 it
	// reports a failure to record the region's progress on disk, which loses nothing (the next
	// start publishes again, idempotently).
	Err error
	// Failures counts the region's consecutive failed attempts, this one included.
	Failures int
	// PointerExpires is the expiry of the pointer written (or attempted).
	PointerExpires time.Time
	At             time.Time
	// Pruned is what retention (OutboxConfig.Keep) did after the release was published;
	// PruneErr, if set, why it did nothing (the release itself is published).
	Pruned   Pruned
	PruneErr error
}

// RegionStatus is one region's publication state, for metrics and logs.
type RegionStatus struct {
	Region string
	// Published is the newest version the region holds completely (0: none known).
	Published uint64
	// Pending counts the queued versions the region does not hold yet.
	Pending int
	// Failures counts consecutive failed attempts; LastError is the last one's error (or, with
	// Failures 0, a failure to record progress on disk).
	Failures  int
	LastError error
	// LastAttempt and LastSuccess are the times of the last attempt and the last success.
	LastAttempt, LastSuccess time.Time
	// PointerExpires is when the pointer last written to the region expires.
	PointerExpires time.Time
}

// Status returns the state of every region, in configuration order.
func (o *Outbox) Status() []RegionStatus {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]RegionStatus, 0, len(o.regions))
	for _, r := range o.regions {
		pending := 0
		for v := range o.queue {
			if v > r.published {
				pending++
			}
		}
		out = append(out, RegionStatus{
			Region: r.Name, Published: r.published, Pending: pending, Failures: r.failures, LastError: r.lastErr,
			LastAttempt: r.lastAttempt, LastSuccess: r.lastSuccess, PointerExpires: r.pointerExpires,
		})
	}
	return out
}

// Run publishes until ctx ends: every region in its own goroutine, queued versions in order,
// a failing region retried with exponential backoff without holding back the others, and each
// region's pointer re-signed and re-written every RefreshEvery. It returns ctx's error.
func (o *Outbox) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, r := range o.regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.runRegion(ctx, r)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

func (o *Outbox) runRegion(ctx context.Context, r *regionState) {
	for {
		err := o.pass(ctx, r)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if o.cfg.Sleep(ctx, o.backoff(r)) != nil {
				return
			}
			continue
		}
		var timer *time.Timer
		var due <-chan time.Time
		if d, ok := o.untilRefresh(r); ok {
			timer = time.NewTimer(d)
			due = timer.C
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-due:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// Flush makes one attempt to bring every region up to date and returns the regions that
// failed, each as a *RegionError. Run does the same continuously; Flush is for one-shot tools
// and tests.
func (o *Outbox) Flush(ctx context.Context) error {
	errs := make([]error, len(o.regions))
	var wg sync.WaitGroup
	for i, r := range o.regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = o.pass(ctx, r)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// job is one write to a region: a queued release, with a pointer fresh enough to write.
type job struct {
	version uint64
	refresh bool
	bundle  *Bundle
	expires time.Time
	at      time.Time
}

// pass publishes to r every queued version it lacks, oldest first, then the pointer if its
// refresh is due. It stops at the first failure, so r never gets a version before an older one.
func (o *Outbox) pass(ctx context.Context, r *regionState) error {
	r.busy.Lock()
	defer r.busy.Unlock()
	for {
		j, ok, err := o.next(r)
		if err != nil || !ok {
			return err
		}
		perr := o.cfg.Publisher.Publish(ctx, []Region{r.Region}, j.bundle)
		ev := o.record(r, j, perr)
		if perr == nil && !j.refresh {
			ev.Pruned, ev.PruneErr = o.prune(ctx, r)
		}
		if o.cfg.Events != nil {
			o.cfg.Events(ev)
		}
		if perr != nil {
			return perr
		}
	}
}

// next decides what r needs: the oldest queued version newer than what it holds, else a pointer
// refresh of the newest if one is due, else nothing.
func (o *Outbox) next(r *regionState) (job, bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.cfg.Now()
	var v uint64
	refresh := false
	for _, qv := range o.versionsLocked() {
		if qv > r.published {
			v = qv
			break
		}
	}
	if v == 0 {
		newest := o.newestLocked()
		if newest == 0 || newest != r.published || now.Before(r.lastWrite.Add(o.cfg.RefreshEvery)) {
			return job{}, false, nil
		}
		v, refresh = newest, true
	}
	q := o.queue[v]
	// A pointer older than RefreshEvery is signed again, so each region gets one that stays
	// valid for at least LatestExpiry-RefreshEvery after it is written.
	if !now.Before(q.latestExpires.Add(o.cfg.RefreshEvery - o.cfg.LatestExpiry)) {
		exp := canonicalTime(now.Add(o.cfg.LatestExpiry))
		env, err := SignLatestFor(q.b.Manifest, exp, o.cfg.TimestampKey)
		if err != nil {
			return job{}, false, err
		}
		q.latest, q.latestExpires = env, exp
	}
	b := &Bundle{Manifest: q.b.Manifest, ManifestEnvelope: q.b.ManifestEnvelope, LatestEnvelope: q.latest, Files: q.b.Files}
	return job{version: v, refresh: refresh, bundle: b, expires: q.latestExpires, at: now}, true, nil
}

// record notes the outcome of j in r, persists progress and drops releases every region holds.
func (o *Outbox) record(r *regionState, j job, perr error) OutboxEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.lastAttempt = j.at
	ev := OutboxEvent{Region: r.Name, Version: j.version, Refresh: j.refresh, PointerExpires: j.expires, At: j.at}
	if perr != nil {
		r.failures++
		r.lastErr = perr
		ev.Err, ev.Failures = perr, r.failures
		return ev
	}
	r.failures, r.lastErr = 0, nil
	r.lastSuccess, r.lastWrite, r.pointerExpires = o.cfg.Now(), j.at, j.expires
	if j.version <= r.published {
		return ev
	}
	r.published = j.version
	progress := map[string]uint64{}
	for _, x := range o.regions {
		progress[x.Name] = x.published
	}
	// Progress on disk only saves work after a restart: republishing is idempotent, so a failed
	// write here is reported but loses nothing.
	if err := writeProgress(o.cfg.Dir, progress); err != nil {
		r.lastErr, ev.Err = err, err
	}
	o.pruneLocked()
	return ev
}

// pruneLocked drops every release older than the newest that every region holds.
func (o *Outbox) pruneLocked() {
	newest := o.newestLocked()
	low := newest
	for _, r := range o.regions {
		low = min(low, r.published)
	}
	for v := range o.queue {
		if v < newest && v <= low {
			if removeQueued(o.cfg.Dir, v) == nil {
				delete(o.queue, v)
			}
		}
	}
}

// retryRetained is how long a release that object lock kept waits before it is tried again:
// S3 retention is set in days, and trying every release on every publication would cost one
// refused request per old object each time.
const retryRetained = 24 * time.Hour

// prune applies retention to r after a publication. r.busy must be held.
func (o *Outbox) prune(ctx context.Context, r *regionState) (Pruned, error) {
	if o.cfg.Keep == 0 {
		return Pruned{}, nil
	}
	now := o.cfg.Now()
	p, err := PruneReleases(ctx, r.Store, o.cfg.Model, o.cfg.Keep, func(v uint64) bool {
		return now.Before(r.retained[v])
	})
	for _, v := range p.Retained {
		if r.retained == nil {
			r.retained = map[uint64]time.Time{}
		}
		r.retained[v] = now.Add(retryRetained)
	}
	for _, v := range p.Deleted {
		delete(r.retained, v)
	}
	return p, err
}

func (o *Outbox) backoff(r *regionState) time.Duration {
	o.mu.Lock()
	n := r.failures
	o.mu.Unlock()
	d := o.cfg.InitialBackoff
	for i := 1; i < n && d < o.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, o.cfg.MaxBackoff)
}

// untilRefresh returns how long until r's pointer is due for a refresh, if r is up to date.
func (o *Outbox) untilRefresh(r *regionState) (time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	newest := o.newestLocked()
	if newest == 0 || r.published != newest {
		return 0, false
	}
	return max(0, r.lastWrite.Add(o.cfg.RefreshEvery).Sub(o.cfg.Now())), true
}
