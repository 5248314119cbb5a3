package siem

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// Append writes lines, complete newline-terminated events, to the spool and syncs them to
// disk. When the spool cannot take them all it takes the events that fit, in order, and
// returns how many it took with an error wrapping ErrSpoolFull: the caller counts the rest as
// lost. A write error leaves the spool as it was before the call (the partial write is cut
// off) and is returned as is.
func (s *Spool) Append(lines []byte) (int, error) {
	if len(lines) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	take, full := lines, false
	if room := s.maxBytes - s.size; int64(len(take)) > room {
		full = true
		if room <= 0 {
			take = nil
		} else {
			take = take[:room]
		}
		if i := bytes.LastIndexByte(take, '\n'); i >= 0 {
			take = take[:i+1]
		} else {
			take = nil
		}
	}
	n := bytes.Count(take, []byte{'\n'})
	if n > 0 {
		if err := s.rotateIfFull(); err != nil {
			return 0, err
		}
		last := &s.segs[len(s.segs)-1]
		if _, err := s.active.Write(take); err != nil {
			s.active.Truncate(last.size)
			s.active.Seek(last.size, 0)
			return 0, fmt.Errorf("siem: spool: write: %w", err)
		}
		if err := s.active.Sync(); err != nil {
			s.active.Truncate(last.size)
			s.active.Seek(last.size, 0)
			return 0, fmt.Errorf("siem: spool: sync: %w", err)
		}
		last.size += int64(len(take))
		s.size += int64(len(take))
		s.end += int64(len(take))
		for _, c := range s.cursors {
			select {
			case c.wake <- struct{}{}:
			default:
			}
		}
	}
	if full {
		return n, fmt.Errorf("%w: %d bytes held, limit %d", ErrSpoolFull, s.size, s.maxBytes)
	}
	return n, nil
}

// rotateIfFull starts a new segment when the active one has reached segBytes. s.mu is held.
func (s *Spool) rotateIfFull() error {
	last := s.segs[len(s.segs)-1]
	if last.size < s.segBytes {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(s.dir, segName(s.end)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("siem: spool: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.active.Close()
	s.active = f
	s.segs = append(s.segs, segment{s.end, 0})
	return nil
}

// Read returns up to maxEvents events, at most maxBytes (but always one whole event if any),
// from offset from, and the offset after them. It returns no data at the end of the spool.
func (s *Spool) Read(from int64, maxEvents, maxBytes int) ([]byte, int, int64, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, 0, from, ErrClosed
	}
	if from >= s.end {
		s.mu.Unlock()
		return nil, 0, from, nil
	}
	i := segmentAt(s.segs, from)
	if i < 0 {
		s.mu.Unlock()
		return nil, 0, from, fmt.Errorf("%w: offset %d is not in the spool (oldest %d)", ErrCorrupt, from, s.segs[0].start)
	}
	seg := s.segs[i]
	if from == seg.start+seg.size { // the end of a full segment: continue in the next
		seg = s.segs[i+1]
	}
	f, err := os.Open(filepath.Join(s.dir, segName(seg.start)))
	s.mu.Unlock()
	if err != nil {
		return nil, 0, from, fmt.Errorf("siem: spool: %w", err)
	}
	defer f.Close()
	n := min(int64(max(maxBytes, MaxEventBytes)), seg.start+seg.size-from)
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, from-seg.start); err != nil {
		return nil, 0, from, fmt.Errorf("siem: spool: read %s: %w", segName(seg.start), err)
	}
	events, cut := 0, 0
	for cut < len(buf) && events < maxEvents {
		j := bytes.IndexByte(buf[cut:], '\n')
		if j < 0 {
			break
		}
		if events > 0 && cut+j+1 > maxBytes {
			break
		}
		cut += j + 1
		events++
	}
	if events == 0 {
		return nil, 0, from, fmt.Errorf("%w: %s: no complete event at offset %d", ErrCorrupt, segName(seg.start), from)
	}
	return buf[:cut], events, from + int64(cut), nil
}

// segmentAt returns the index of the segment holding offset from (or ending at it), or -1.
func segmentAt(segs []segment, from int64) int {
	for i := len(segs) - 1; i >= 0; i-- {
		if segs[i].start <= from {
			if from <= segs[i].start+segs[i].size {
				return i
			}
			return -1
		}
	}
	return -1
}

// Acked returns the offset the cursor's sender has acknowledged.
func (c *Cursor) Acked() int64 {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.acked
}

// Wake returns a channel that receives after events were appended.
func (c *Cursor) Wake() <-chan struct{} { return c.wake }

// Pending returns the bytes appended after the acknowledged offset.
func (c *Cursor) Pending() int64 {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.s.end - c.acked
}

// Ack persists offset as delivered, then deletes the segments every sender has acknowledged
// entirely. Offsets below the current one are ignored.
func (c *Cursor) Ack(offset int64) error {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if offset <= c.acked {
		return nil
	}
	if offset > s.end {
		return fmt.Errorf("siem: spool: ack %d past the end %d", offset, s.end)
	}
	if err := atomicfile.Write(filepath.Join(s.dir, "ack-"+c.name), []byte(strconv.FormatInt(offset, 10)+"\n"), 0o600); err != nil {
		return fmt.Errorf("siem: spool: %w", err)
	}
	c.acked = offset
	low := offset
	for _, o := range s.cursors {
		low = min(low, o.acked)
	}
	for len(s.segs) > 1 && s.segs[0].start+s.segs[0].size <= low {
		if err := os.Remove(filepath.Join(s.dir, segName(s.segs[0].start))); err != nil {
			return fmt.Errorf("siem: spool: %w", err)
		}
		s.size -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	return nil
}
