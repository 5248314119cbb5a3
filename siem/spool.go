package siem

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vigilauth/vigil/internal/atomicfile"
)

// Spool is a durable queue of encoded events in a directory: append-only segment files named
// by the logical offset of their first byte (seg-<offset>.jsonl), one event per line, and one
// acknowledged offset per sender (ack-<sender>). Offsets only grow, across segments and
// restarts. Append writes and fsyncs before it returns; a sender reads from its acknowledged
// offset and persists a new one after each delivery the collector confirmed, so after a crash
// or a restart it resends from there: at least once. A segment is deleted when every sender
// has acknowledged all of it. On open, a partial line at the end of the newest segment (a
// write cut short by a crash) is cut off: it was never reported as spooled.
//
// One goroutine appends; any number read and acknowledge.
type Spool struct {
	dir      string
	maxBytes int64
	segBytes int64

	mu      sync.Mutex
	segs    []segment // ascending; the last is the one appended to
	active  *os.File
	end     int64 // logical offset just past the last complete line
	size    int64 // bytes in all segments
	cursors map[string]*Cursor
	closed  bool
}

type segment struct{ start, size int64 }

func segName(start int64) string { return fmt.Sprintf("seg-%020d.jsonl", start) }

// Cursor is one sender's position in the spool: the offset it has acknowledged.
type Cursor struct {
	s     *Spool
	name  string
	acked int64 // guarded by s.mu
	wake  chan struct{}
}

// OpenSpool opens (or creates) the spool in dir for the named senders. maxBytes bounds the
// segments on disk; segBytes is the size at which a new segment starts (a segment grows past
// it by at most one Append, which is never split across segments).
func OpenSpool(dir string, maxBytes, segBytes int64, senders ...string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("siem: spool: %w", err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, segBytes: segBytes, cursors: map[string]*Cursor{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("siem: spool: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "seg-") || !strings.HasSuffix(name, ".jsonl") || atomicfile.IsTemp(name) {
			continue
		}
		start, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(name, "seg-"), ".jsonl"), 10, 64)
		if err != nil || start < 0 || segName(start) != name {
			return nil, fmt.Errorf("%w: %s: unexpected segment name %q", ErrCorrupt, dir, name)
		}
		info, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("siem: spool: %w", err)
		}
		s.segs = append(s.segs, segment{start, info.Size()})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].start < s.segs[j].start })
	for i := 1; i < len(s.segs); i++ {
		if prev := s.segs[i-1]; prev.start+prev.size != s.segs[i].start {
			return nil, fmt.Errorf("%w: %s: %s ends at %d but the next segment starts at %d", ErrCorrupt, dir,
				segName(prev.start), prev.start+prev.size, s.segs[i].start)
		}
	}
	acks := map[string]int64{}
	var maxAck int64
	for _, name := range senders {
		ack, ok, err := readAck(filepath.Join(dir, "ack-"+name))
		if err != nil {
			return nil, err
		}
		if ok {
			acks[name] = ack
			maxAck = max(maxAck, ack)
		}
	}
	if err := s.openActive(maxAck); err != nil {
		return nil, err
	}
	first := s.segs[0].start
	for _, name := range senders {
		ack, ok := acks[name]
		switch {
		case !ok || ack < first:
			// A sender new to this spool (or one that was left out while others moved on)
			// starts at the oldest event still held.
			ack = first
		case ack > s.end:
			s.active.Close()
			return nil, fmt.Errorf("%w: %s: ack-%s is at offset %d, past the spool's end %d", ErrCorrupt, dir, name, ack, s.end)
		}
		s.cursors[name] = &Cursor{s: s, name: name, acked: ack, wake: make(chan struct{}, 1)}
	}
	return s, nil
}

// openActive repairs and opens the newest segment for appending, creating the first segment
// at offset start if there is none.
func (s *Spool) openActive(start int64) error {
	if len(s.segs) == 0 {
		s.segs = []segment{{start, 0}}
	}
	last := &s.segs[len(s.segs)-1]
	path := filepath.Join(s.dir, segName(last.start))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("siem: spool: %w", err)
	}
	if complete, err := completeLength(f, last.size); err != nil {
		f.Close()
		return fmt.Errorf("siem: spool: %s: %w", path, err)
	} else if complete != last.size {
		if err := f.Truncate(complete); err != nil {
			f.Close()
			return fmt.Errorf("siem: spool: %w", err)
		}
		last.size = complete
	}
	if _, err := f.Seek(last.size, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("siem: spool: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		f.Close()
		return err
	}
	s.active = f
	s.end = last.start + last.size
	for _, g := range s.segs {
		s.size += g.size
	}
	return nil
}

// completeLength returns the length of f's prefix that ends with a newline.
func completeLength(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 4096)
	for end := size; end > 0; {
		n := min(end, int64(len(buf)))
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

func readAck(path string) (int64, bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("siem: spool: %w", err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("%w: %s: not an offset: %q", ErrCorrupt, path, data)
	}
	return v, true, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("siem: spool: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("siem: spool: sync %s: %w", dir, err)
	}
	return nil
}

// Cursor returns the named sender's cursor, or nil if the spool was not opened for it.
func (s *Spool) Cursor(name string) *Cursor { return s.cursors[name] }

// Bytes returns the bytes the segments hold on disk.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size
}

// End returns the offset just past the last spooled event.
func (s *Spool) End() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

// Close closes the newest segment. Appends and reads fail afterwards.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.active.Close()
}
