package siem

import (
	"context"
	"errors"
	"time"
)

// idlePoll bounds how long a sender sleeps without news from the spool writer.
const idlePoll = time.Second

// runHEC delivers the spool to the HEC endpoint from its acknowledged offset, one batch at a
// time, acknowledging each batch the collector confirmed and retrying a failed one with
// exponential backoff. With untilDelivered it returns once it has caught up.
func (e *Exporter) runHEC(ctx context.Context, s *hecSender, untilDelivered bool) error {
	cur := e.spool.Cursor("hec")
	pos, wait := cur.Acked(), e.cfg.RetryMin
	for ctx.Err() == nil {
		e.m.pendingByte.WithLabelValues("hec").Set(float64(cur.Pending()))
		batch, n, next, err := e.spool.Read(pos, e.cfg.BatchEvents, e.cfg.BatchBytes)
		if err != nil {
			return err
		}
		if n == 0 {
			if untilDelivered {
				return nil
			}
			e.idle(ctx, cur.Wake(), nil, idlePoll)
			continue
		}
		if err := s.deliver(ctx, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.m.failed.WithLabelValues("hec").Inc()
			if de := (*DeliveryError)(nil); untilDelivered && errors.As(err, &de) && de.Refused() {
				return err
			}
			e.cfg.Logger.Warn("siem: delivery to HEC failed; retrying", "err", err, "retry_in", wait)
			wait = e.backoff(ctx, wait)
			continue
		}
		if err := cur.Ack(next); err != nil {
			return err
		}
		e.m.sent.WithLabelValues("hec").Add(float64(n))
		e.m.spoolBytes.Set(float64(e.spool.Bytes()))
		pos, wait = next, e.cfg.RetryMin
	}
	return nil
}

// written is a batch written to the syslog connection and not yet acknowledged.
type written struct {
	end    int64
	events int
	at     time.Time
}

// runSyslog delivers the spool over one TLS connection at a time. Syslog has no
// acknowledgement, so a batch is acknowledged only once the connection has stayed up for
// Confirm after it was written; when the connection breaks, everything since the acknowledged
// offset is sent again on the next one.
func (e *Exporter) runSyslog(ctx context.Context, untilDelivered bool) error {
	cfg := e.cfg.Syslog
	cur := e.spool.Cursor("syslog")
	var conn *syslogConn
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	var pending []written
	pos, wait := cur.Acked(), e.cfg.RetryMin
	broken := func(err error) {
		e.m.failed.WithLabelValues("syslog").Inc()
		e.cfg.Logger.Warn("siem: syslog connection failed; resending from the last acknowledged event", "err", err, "retry_in", wait)
		if conn != nil {
			conn.close()
			conn = nil
		}
		pending, pos = nil, cur.Acked()
		wait = e.backoff(ctx, wait)
	}
	for ctx.Err() == nil {
		e.m.pendingByte.WithLabelValues("syslog").Set(float64(cur.Pending()))
		if conn == nil {
			c, err := dialSyslog(ctx, cfg)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				broken(err)
				continue
			}
			conn = c
		}
		// Acknowledge the batches the connection has outlived by Confirm.
		now := time.Now()
		select {
		case <-conn.dead:
			broken(errConnClosed)
			continue
		default:
		}
		k := 0
		for k < len(pending) && now.Sub(pending[k].at) >= cfg.Confirm {
			k++
		}
		if k > 0 {
			if err := cur.Ack(pending[k-1].end); err != nil {
				return err
			}
			events := 0
			for _, w := range pending[:k] {
				events += w.events
			}
			e.m.sent.WithLabelValues("syslog").Add(float64(events))
			e.m.spoolBytes.Set(float64(e.spool.Bytes()))
			pending = pending[k:]
			wait = e.cfg.RetryMin
		}
		batch, n, next, err := e.spool.Read(pos, e.cfg.BatchEvents, e.cfg.BatchBytes)
		if err != nil {
			return err
		}
		if n > 0 {
			if err := conn.write(batch, cfg.Hostname, cfg.Timeout); err != nil {
				broken(err)
				continue
			}
			pending = append(pending, written{end: next, events: n, at: time.Now()})
			pos = next
			continue
		}
		if len(pending) == 0 && untilDelivered {
			return nil
		}
		sleep := idlePoll
		if len(pending) > 0 {
			sleep = max(0, cfg.Confirm-now.Sub(pending[0].at)) + time.Millisecond
		}
		e.idle(ctx, cur.Wake(), conn.dead, sleep)
	}
	return nil
}

// idle waits for new events, a dead connection, d, or the end of ctx.
func (e *Exporter) idle(ctx context.Context, wake <-chan struct{}, dead <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-wake:
	case <-dead:
	case <-t.C:
	}
}
