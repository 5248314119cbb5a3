package guard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/vigilauth/vigil/audit"
)

// Recorder receives every authorization decision and every change in a session's standing.
// Authorize calls RecordDecision on its own goroutine: implementations must not block or
// allocate (AuditQueue hands entries to a bounded buffer).
type Recorder interface {
	RecordDecision(d Decision)
	RecordTransition(t Transition)
}

// AuditQueue is a Recorder that feeds an audit.Log through a bounded buffer. Recording never
// blocks: when the buffer is full the entry is dropped and counted, and the writer puts a gap
// record with the count into the log, so a loss is visible to anyone verifying the log rather
// than silent. One goroutine runs Run (or calls Drain) and owns the Log.
type AuditQueue struct {
	ch       chan auditItem
	queued   chan struct{} // holds a token once entries were recorded since the last receive
	pending  atomic.Bool   // entries recorded since Drain began: queued was notified already
	dropped  atomic.Uint64 // entries lost: the buffer was full, or the log format refused them
	invalid  atomic.Uint64 // of dropped, entries the log format refused; counted by the writer
	reported uint64        // drops already written as gaps; owned by the draining goroutine
	// invalid drops already written as gaps; owned by the draining goroutine
	reportedInvalid uint64
}

type auditItem struct {
	decision   Decision
	transition Transition
	isDecision bool
}

var _ Recorder = (*AuditQueue)(nil)

// DefaultAuditQueueSize is the buffer NewAuditQueue uses for a size of 0: at 1 µs per
// Authorize it covers a few milliseconds of a writer stalled on a slow disk.
const DefaultAuditQueueSize = 4096

// NewAuditQueue returns a queue buffering up to size entries (0 means DefaultAuditQueueSize).
func NewAuditQueue(size int) *AuditQueue {
	if size <= 0 {
		size = DefaultAuditQueueSize
	}
	return &AuditQueue{ch: make(chan auditItem, size), queued: make(chan struct{}, 1)}
}

// RecordDecision implements Recorder.
func (q *AuditQueue) RecordDecision(d Decision) {
	select {
	case q.ch <- auditItem{decision: d, isDecision: true}:
	default:
		q.dropped.Add(1)
	}
	q.notify()
}

// RecordTransition implements Recorder.
func (q *AuditQueue) RecordTransition(t Transition) {
	select {
	case q.ch <- auditItem{transition: t}:
	default:
		q.dropped.Add(1)
	}
	q.notify()
}

// notify leaves a token in queued for the first entry since Drain began, so that a writer
// sleeping on Queued wakes once per drain, not once per entry: under load the hot path pays
// one atomic swap.
func (q *AuditQueue) notify() {
	if q.pending.Swap(true) {
		return
	}
	select {
	case q.queued <- struct{}{}:
	default:
	}
}

// Queued returns a channel that receives once entries (or drops) were recorded since Drain
// last began, so that a writer that calls Drain itself can sleep while nothing happens rather
// than poll. All the entries until the next Drain share that one receive.
func (q *AuditQueue) Queued() <-chan struct{} { return q.queued }

// Dropped returns how many entries the queue has dropped so far.
func (q *AuditQueue) Dropped() uint64 { return q.dropped.Load() }

// Run writes queued entries to log until ctx is done, checking every tick (0 means one second)
// whether a timed checkpoint is due. On return it has written everything queued and signed a
// final checkpoint; it does not close log. It returns nil when ctx ends, or the first write
// error.
func (q *AuditQueue) Run(ctx context.Context, log *audit.Log, tick time.Duration) error {
	if tick <= 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := q.Drain(log, time.Now()); err != nil {
				return err
			}
			return log.Checkpoint(time.Now())
		case it := <-q.ch:
			if err := q.write(log, it, time.Now()); err != nil {
				return err
			}
			if err := q.Drain(log, time.Now()); err != nil {
				return err
			}
		case now := <-t.C:
			if err := q.Drain(log, now); err != nil {
				return err
			}
		}
	}
}

// Drain writes a gap record for entries dropped since the last call, then every entry queued
// now, signs a checkpoint if one is due, and flushes.
func (q *AuditQueue) Drain(log *audit.Log, now time.Time) error {
	// Cleared before the channel is read: an entry recorded from here on notifies again, so
	// none waits for a later drain without a token saying so.
	q.pending.Store(false)
	for {
		select {
		case it := <-q.ch:
			if err := q.write(log, it, now); err != nil {
				return err
			}
			continue
		default:
		}
		break
	}
	if err := q.noteDrops(log, now); err != nil {
		return err
	}
	if log.CheckpointDue(now) {
		if err := log.Checkpoint(now); err != nil {
			return err
		}
	}
	return log.Flush()
}

func (q *AuditQueue) noteDrops(log *audit.Log, now time.Time) error {
	if d := q.dropped.Load(); d > q.reported {
		// Only the draining goroutine counts invalid entries, and it counts them in dropped too.
		inv := q.invalid.Load()
		if _, err := log.AppendGapOf(now, audit.Gap{Dropped: d - q.reported, Invalid: inv - q.reportedInvalid}); err != nil {
			return err
		}
		q.reported, q.reportedInvalid = d, inv
	}
	return nil
}

func (q *AuditQueue) write(log *audit.Log, it auditItem, now time.Time) error {
	if err := q.noteDrops(log, now); err != nil {
		return err
	}
	var err error
	if it.isDecision {
		_, err = log.AppendDecision(now, it.decision.AuditRecord())
	} else {
		_, err = log.AppendSessionEvent(now, it.transition.AuditRecord())
	}
	if errors.Is(err, audit.ErrMalformed) {
		// Nothing was written; count the entry as dropped, and as invalid rather than lost to a
		// full queue, so a gap record shows it for what it is.
		q.invalid.Add(1)
		q.dropped.Add(1)
		return nil
	}
	if err != nil {
		return fmt.Errorf("guard: audit: %w", err)
	}
	return nil
}

// auditName fits a caller-supplied name (an unknown resource, say) into the audit format.
func auditName(s string) string {
	if s == "" {
		return "-"
	}
	return auditString(s, audit.MaxNameBytes)
}

// auditString fits a caller-supplied string into the audit format's limit of limit bytes of
// UTF-8, which the log refuses otherwise (and the entry would be lost): bytes that are not
// UTF-8 become U+FFFD, and a string too long is cut at a character boundary and marked "…".
func auditString(s string, limit int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) > limit {
		i := limit - 8
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s = s[:i] + "…"
	}
	return s
}

func auditReasons(rs []Reason) []audit.Reason {
	if len(rs) == 0 {
		return nil
	}
	out := make([]audit.Reason, len(rs))
	for i, r := range rs {
		// The format holds impacts within the trust scale; no signal moves trust further.
		out[i] = audit.Reason{Signal: r.Signal.String(), Impact: roundTrust(max(-MaxTrust, min(r.Impact, MaxTrust))),
			Text: auditString(r.Text, audit.MaxTextBytes)}
	}
	return out
}

// AuditRecord is d as the decision log records it: names and reasons fitted to the log's
// format. The SIEM exporter builds its events from it, so that a decision exported live and
// the same decision replayed from the log carry the same identifier.
func (d *Decision) AuditRecord() audit.Decision {
	return audit.Decision{
		At: d.At, Session: auditName(d.Session), User: auditString(d.User, audit.MaxNameBytes), Resource: auditName(d.Resource), Allow: d.Allow,
		Outcome: d.Outcome.String(), Tier: d.Tier.String(), Trust: d.Trust, Required: d.Required,
		Reasons: auditReasons(d.Reasons),
	}
}

// AuditRecord is t as the decision log records it (see Decision.AuditRecord).
func (t *Transition) AuditRecord() audit.SessionEvent {
	return audit.SessionEvent{
		At: t.At, Session: auditName(t.Session), User: auditString(t.User, audit.MaxNameBytes), Event: t.Kind.String(),
		From: t.From.String(), To: t.To.String(), Trust: t.Trust, Challenge: t.Challenge,
		Reasons: auditReasons(t.Reasons),
	}
}
