package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"time"
)

// Config configures a Log. The zero value of every field but Signer means its default.
type Config struct {
	// Signer signs checkpoints. Required.
	Signer Signer
	// CheckpointEvery is how many records may follow a checkpoint before the Log writes the next
	// one by itself. Default 256.
	CheckpointEvery int
	// CheckpointInterval is how long a record may wait unsigned, by the clock that gives the Log
	// its now, before CheckpointDue reports true; the loop that owns the Log asks on a ticker, or
	// sleeps until CheckpointAt. Default 10 seconds.
	CheckpointInterval time.Duration
}

// Defaults for Config.
const (
	DefaultCheckpointEvery    = 256
	DefaultCheckpointInterval = 10 * time.Second
)

func (c *Config) validate() error {
	if c.Signer == nil {
		return errNoSigner
	}
	if c.CheckpointEvery < 0 || c.CheckpointInterval < 0 {
		return errors.New("audit: checkpoint schedule must not be negative")
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	return nil
}

// Head identifies the end of a chain: the last record's sequence number, hash and time.
// The zero Head is the head of an empty log.
type Head struct {
	Seq  uint64
	Hash Hash
	Time time.Time
}

// Log appends records to a chain. It is not safe for concurrent use: one goroutine owns it.
// After a failed write the Log refuses further appends, so a chain never continues past a record
// that may be incomplete on disk.
type Log struct {
	w        io.Writer
	buf      *bufio.Writer // set when the Log buffers (Open); Flush and Sync push it out
	sync     func() error  // fsync of the underlying file, if any
	closer   io.Closer
	cfg      Config
	key      KeyID
	head     Head
	unsigned int       // records since the last checkpoint
	oldest   time.Time // the caller's now when the oldest unsigned record was appended; zero for a previous run's
	err      error     // sticky write error
}

// New returns a Log that appends to w, continuing the chain that ends at start (the zero Head for
// a new log). Every record is written with a single Write call.
func New(w io.Writer, start Head, cfg Config) (*Log, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("audit: nil writer")
	}
	return &Log{w: w, cfg: cfg, key: KeyIDOf(cfg.Signer.Public().PublicKey()), head: start}, nil
}

// Head returns the head of the chain written so far.
func (l *Log) Head() Head { return l.head }

// AppendDecision appends an authorization decision. now is the write time; record times never go
// backwards, so a now earlier than the last record's time is raised to it.
func (l *Log) AppendDecision(now time.Time, d Decision) (Record, error) {
	d.At = utc(d.At)
	return l.appendEntry(now, Record{Kind: KindDecision, Decision: &d})
}

// AppendSessionEvent appends a change in a session's standing.
func (l *Log) AppendSessionEvent(now time.Time, e SessionEvent) (Record, error) {
	e.At = utc(e.At)
	return l.appendEntry(now, Record{Kind: KindSession, Session: &e})
}

// AppendGap records that dropped entries could not be logged because the queue in front of the
// log was full.
func (l *Log) AppendGap(now time.Time, dropped uint64) (Record, error) {
	return l.AppendGapOf(now, Gap{Dropped: dropped})
}

// AppendGapOf records that g.Dropped entries could not be logged, g.Invalid of them because the
// log format refused them.
func (l *Log) AppendGapOf(now time.Time, g Gap) (Record, error) {
	return l.appendEntry(now, Record{Kind: KindGap, Gap: &g})
}

// appendEntry appends a non-checkpoint record and writes a checkpoint when CheckpointEvery
// records are unsigned.
func (l *Log) appendEntry(now time.Time, r Record) (Record, error) {
	rec, err := l.append(now, r)
	if err != nil {
		return Record{}, err
	}
	if l.unsigned >= l.cfg.CheckpointEvery {
		if err := l.Checkpoint(now); err != nil {
			return rec, err
		}
	}
	return rec, nil
}

// CheckpointDue reports whether a record has waited unsigned for CheckpointInterval or longer.
func (l *Log) CheckpointDue(now time.Time) bool {
	at, ok := l.CheckpointAt()
	return ok && !now.Before(at)
}

// CheckpointAt returns when CheckpointDue turns true, CheckpointInterval after the now the oldest
// unsigned record was appended at, and false if no record is unsigned: the owning loop can sleep
// until then instead of asking on a ticker. Records a previous run left unsigned (Open) are due
// at once. The wait is measured on the caller's clock, not with records' times, which never go
// back: after the clock steps back they stay ahead of it, and a checkpoint would wait until the
// clock caught up with them.
func (l *Log) CheckpointAt() (time.Time, bool) {
	if l.unsigned == 0 {
		return time.Time{}, false
	}
	return l.oldest.Add(l.cfg.CheckpointInterval), true
}

// Checkpoint signs the chain up to its head and appends the signature as a record, then flushes
// and syncs the file if the Log has one. It does nothing if no record is unsigned.
func (l *Log) Checkpoint(now time.Time) error {
	if l.unsigned == 0 {
		return nil
	}
	t := l.stamp(now)
	sig, err := l.cfg.Signer.Sign(CheckpointMessage(l.head.Seq, l.head.Hash, t))
	if err != nil {
		return err
	}
	cp := &Checkpoint{Covers: l.head.Seq, Head: l.head.Hash, Key: l.key, Sig: sig}
	if _, err := l.append(t, Record{Kind: KindCheckpoint, Checkpoint: cp}); err != nil {
		return err
	}
	return l.Sync()
}

func (l *Log) append(now time.Time, r Record) (Record, error) {
	if l.err != nil {
		return Record{}, l.err
	}
	r.Seq = l.head.Seq + 1
	r.Time = l.stamp(now)
	r.Prev = l.head.Hash
	line, h, err := r.encodeLine()
	if err != nil {
		return Record{}, err
	}
	r.Hash = h
	if _, err := l.w.Write(line); err != nil {
		l.err = fmt.Errorf("audit: write record %d: %w (log closed to further appends)", r.Seq, err)
		return Record{}, l.err
	}
	l.head = Head{Seq: r.Seq, Hash: r.Hash, Time: r.Time}
	if r.Kind == KindCheckpoint {
		l.unsigned = 0
	} else {
		if l.unsigned == 0 {
			l.oldest = now
		}
		l.unsigned++
	}
	return r, nil
}

// stamp returns now in UTC without a monotonic reading, never earlier than the head's time.
func (l *Log) stamp(now time.Time) time.Time {
	t := utc(now)
	if t.Before(l.head.Time) {
		t = l.head.Time
	}
	return t
}

func utc(t time.Time) time.Time { return t.Round(0).UTC() }

// Flush pushes buffered records to the operating system.
func (l *Log) Flush() error {
	if l.buf == nil {
		return l.err
	}
	if err := l.buf.Flush(); err != nil {
		l.err = fmt.Errorf("audit: flush: %w (log closed to further appends)", err)
	}
	return l.err
}

// Sync flushes and, for a file, waits until the records are on stable storage.
func (l *Log) Sync() error {
	if err := l.Flush(); err != nil {
		return err
	}
	if l.sync != nil {
		if err := l.sync(); err != nil {
			l.err = fmt.Errorf("audit: sync: %w (log closed to further appends)", err)
		}
	}
	return l.err
}

// Close signs any unsigned records, syncs and closes the file if the Log opened one.
func (l *Log) Close(now time.Time) error {
	err := l.Checkpoint(now)
	if serr := l.Sync(); err == nil {
		err = serr
	}
	if l.closer != nil {
		if cerr := l.closer.Close(); err == nil {
			err = cerr
		}
		l.closer = nil
	}
	if l.err == nil {
		l.err = errors.New("audit: log closed")
	}
	return err
}
