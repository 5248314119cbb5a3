package siem

import (
	"context"
	"errors"
	"time"

	"github.com/vigilauth/vigil/audit"
	"github.com/vigilauth/vigil/guard"
)

// write is the spool writer: it encodes queued entries, appends them to the spool in batches
// with one fsync each, and spools a gap finding for entries lost since the last batch. When ctx
// is done it spools what is still queued and returns.
func (e *Exporter) write(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	buf := make([]byte, 0, 64<<10)
	for {
		select {
		case <-ctx.Done():
			for {
				var err error
				buf, err = e.writeBatch(buf[:0], nil)
				if err != nil || len(e.ch) == 0 {
					return err
				}
			}
		case it := <-e.ch:
			var err error
			if buf, err = e.writeBatch(buf[:0], &it); err != nil {
				return err
			}
		case <-tick.C:
			var err error
			if buf, err = e.writeBatch(buf[:0], nil); err != nil {
				return err
			}
		}
	}
}

// writeBatch spools first (if not nil) and whatever else is queued now, up to BatchEvents,
// after a gap finding for earlier losses. Only a failing disk is an error.
func (e *Exporter) writeBatch(buf []byte, first *item) ([]byte, error) {
	now := e.cfg.Clock()
	gap := uint64(0)
	if d := e.dropped.Load(); d > e.reported {
		gap = d - e.reported
		ev := FromGap(e.cfg.Source, now, gap, "siem exporter", 0)
		buf, _ = AppendEvent(buf, &ev)
	}
	gapBytes := len(buf)
	n := 0
	add := func(it *item) {
		ev, ok := e.event(it)
		if !ok {
			return
		}
		var err error
		if buf, err = AppendEvent(buf, &ev); err != nil {
			e.drop(DropUnencodable, 1)
			return
		}
		n++
	}
	if first != nil {
		add(first)
	}
	for n < e.cfg.BatchEvents && len(buf) < e.cfg.BatchBytes {
		select {
		case it := <-e.ch:
			add(&it)
			continue
		default:
		}
		break
	}
	if len(buf) == 0 {
		return buf, nil
	}
	took, err := e.spool.Append(buf)
	e.m.spoolBytes.Set(float64(e.spool.Bytes()))
	e.m.spooled.Add(float64(took))
	lost := n + boolInt(gapBytes > 0) - took
	if gapBytes > 0 {
		if took > 0 {
			e.reported += gap
		} else {
			lost-- // the gap finding is retried with the next batch, its count grown
		}
	}
	// What the spool refused (full) or lost (a failing disk) is counted, so a gap finding
	// follows once there is room.
	e.drop(DropSpoolFull, uint64(lost))
	if err != nil && !errors.Is(err, ErrSpoolFull) {
		// Stop, as the audit log does after a failed write.
		return buf, err
	}
	return buf, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (e *Exporter) drop(reason string, n uint64) {
	if n == 0 {
		return
	}
	e.dropped.Add(n)
	e.m.dropped[reason].Add(float64(n))
}

// event maps a queued entry to its OCSF event; audit checkpoints have none.
func (e *Exporter) event(it *item) (Event, bool) {
	switch it.kind {
	case audit.KindDecision:
		return FromDecision(e.cfg.Source, auditDecision(&it.decision), 0), true
	case audit.KindSession:
		return FromSession(e.cfg.Source, auditSession(&it.change), 0), true
	}
	return FromRecord(e.cfg.Source, it.record)
}

// auditDecision is the decision as the audit log records it, so an event exported live and
// the same decision replayed from the log carry the same metadata.uid.
func auditDecision(d *guard.Decision) audit.Decision {
	r := d.AuditRecord()
	r.At = r.At.Round(0).UTC()
	return r
}

func auditSession(t *guard.Transition) audit.SessionEvent {
	r := t.AuditRecord()
	r.At = r.At.Round(0).UTC()
	return r
}
