package siem

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
)

// Exporter takes decisions and session events from the guard (it is a guard.Recorder) or from
// an audit log (Enqueue), and delivers them as OCSF events to the configured collectors, at
// least once. Recording never blocks: entries go to a bounded channel, and when it is full the
// entry is dropped and counted; the spool writer then spools a gap finding with the count, so
// the loss shows in the SIEM itself. Run owns the goroutines.
type Exporter struct {
	cfg      Config
	ch       chan item
	dropped  atomic.Uint64 // entries lost before the spool, for gap findings
	reported uint64        // drops already spooled as gap findings; owned by the writer
	spool    *Spool
	m        *metrics
	sinks    []string
	running  atomic.Bool
}

// kindRecord marks an item that carries an audit log record rather than a guard entry.
const kindRecord audit.Kind = "record"

// item is one entry on its way to the spool: from the guard, or a record of an audit log.
type item struct {
	kind     audit.Kind
	decision guard.Decision
	change   guard.Transition
	record   audit.Record
}

var _ guard.Recorder = (*Exporter)(nil)

// New opens the spool in cfg.Dir and returns an Exporter; nothing is sent until Run.
func New(cfg Config) (*Exporter, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var sinks []string
	if cfg.HEC != nil {
		sinks = append(sinks, "hec")
	}
	if cfg.Syslog != nil {
		sinks = append(sinks, "syslog")
	}
	m, err := newMetrics(cfg.Registerer, sinks)
	if err != nil {
		return nil, fmt.Errorf("siem: metrics: %w", err)
	}
	sp, err := OpenSpool(cfg.Dir, cfg.MaxSpoolBytes, cfg.SegmentBytes, sinks...)
	if err != nil {
		return nil, err
	}
	m.spoolBytes.Set(float64(sp.Bytes()))
	return &Exporter{cfg: cfg, ch: make(chan item, cfg.QueueSize), spool: sp, m: m, sinks: sinks}, nil
}

// RecordDecision implements guard.Recorder: it never blocks and does not allocate.
func (e *Exporter) RecordDecision(d guard.Decision) {
	e.offer(item{kind: audit.KindDecision, decision: d})
}

// RecordTransition implements guard.Recorder.
func (e *Exporter) RecordTransition(t guard.Transition) {
	e.offer(item{kind: audit.KindSession, change: t})
}

// Enqueue queues one audit log record (checkpoints are ignored) and reports whether it was
// queued; it never blocks. A record it could not queue is counted and reported by a gap.
func (e *Exporter) Enqueue(r audit.Record) bool {
	if r.Kind == audit.KindCheckpoint {
		return true
	}
	return e.offer(item{kind: kindRecord, record: r})
}

func (e *Exporter) offer(it item) bool {
	select {
	case e.ch <- it:
		e.m.queued.Inc()
		return true
	default:
		e.dropped.Add(1)
		e.m.dropped[DropQueueFull].Inc()
		return false
	}
}

// Dropped returns how many entries never reached the spool, for any reason.
func (e *Exporter) Dropped() uint64 { return e.dropped.Load() }

// Run writes queued entries to the spool and delivers the spool to each collector until ctx
// is done. On return everything queued is in the spool (delivered on the next Run if not
// before) and the spool is closed: the Exporter is finished. It returns nil when ctx ends, or
// the first error that stops it (a spool that cannot be written or read).
func (e *Exporter) Run(ctx context.Context) error {
	return e.run(ctx, false)
}

// Deliver sends what the spool holds to each collector and returns once every collector has
// acknowledged all of it, or when ctx is done (with ctx's error). It closes the spool.
func (e *Exporter) Deliver(ctx context.Context) error {
	return e.run(ctx, true)
}

func (e *Exporter) run(ctx context.Context, untilDelivered bool) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("siem: Run called twice")
	}
	defer e.spool.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	start := func(f func(context.Context, bool) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx, untilDelivered); err != nil {
				errs <- err
				// A collector's refusal ends only its own sink's delivery: the others finish.
				if de := (*DeliveryError)(nil); !errors.As(err, &de) || !de.Refused() {
					cancel()
				}
			}
		}()
	}
	if e.cfg.HEC != nil {
		s := newHECSender(e.cfg.HEC, e.cfg.Source)
		defer s.close()
		start(func(ctx context.Context, until bool) error { return e.runHEC(ctx, s, until) })
	}
	if e.cfg.Syslog != nil {
		start(e.runSyslog)
	}
	var werr error
	if untilDelivered {
		wg.Wait()
	} else {
		werr = e.write(ctx)
		cancel()
		wg.Wait()
	}
	close(errs)
	for err := range errs {
		return err
	}
	if werr != nil {
		return werr
	}
	if untilDelivered && ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// backoff waits d or until ctx is done, and returns the next wait.
func (e *Exporter) backoff(ctx context.Context, d time.Duration) time.Duration {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return min(2*d, e.cfg.RetryMax)
}

// AppendRecords maps audit log records (checkpoints skipped) and writes them to the spool
// now, before Run or Deliver; it is for replaying a decision log, not for the live path. It
// returns how many events it spooled.
func (e *Exporter) AppendRecords(rs []audit.Record) (int, error) {
	var buf []byte
	n := 0
	for _, r := range rs {
		ev, ok := FromRecord(e.cfg.Source, r)
		if !ok {
			continue
		}
		var err error
		if buf, err = AppendEvent(buf, &ev); err != nil {
			return n, err
		}
		if len(buf) >= e.cfg.BatchBytes {
			took, err := e.spool.Append(buf)
			n += took
			if err != nil {
				return n, err
			}
			buf = buf[:0]
		}
	}
	took, err := e.spool.Append(buf)
	n += took
	e.m.spooled.Add(float64(n))
	e.m.spoolBytes.Set(float64(e.spool.Bytes()))
	return n, err
}

// Close closes the spool of an Exporter that was never run (Run and Deliver close it).
func (e *Exporter) Close() error { return e.spool.Close() }
