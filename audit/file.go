package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Open opens the log file at path for appending, creating it if needed. An existing file is
// verified first under the key of cfg.Signer; Open refuses to extend a file that does not verify
// (altered, truncated mid-record or signed by another key), so a damaged log is never buried
// under new records. Records are buffered: call Flush after a batch, and Close when done.
func Open(path string, cfg Config) (*Log, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	rep, err := Verify(bufio.NewReader(f), cfg.Signer.Public())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: refusing to append to a log that does not verify: %w", path, err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: %s: %w", path, err)
	}
	buf := bufio.NewWriterSize(f, 64<<10)
	l, err := New(buf, rep.Head, cfg)
	if err != nil {
		f.Close()
		return nil, err
	}
	l.buf, l.sync, l.closer = buf, f.Sync, f
	if n := rep.Uncovered(); n > 0 {
		// Records a previous run wrote but did not sign: count them as unsigned so the next
		// checkpoint covers them, and as waiting since before this run, so that it is due at
		// once. A final checkpoint is not among them: counting it, every reopening wrote a
		// checkpoint that signed nothing but the previous one.
		l.unsigned = int(n)
	}
	return l, nil
}

// CutTornTail removes from the log file at path a last line without its newline: the part of
// a record a crash cut short, which never verified and so was never part of the chain. Open
// refuses such a file, as it refuses any damage; the owner of a log calls CutTornTail first
// when it knows a crash can leave one (its buffered writes are not synced record by record).
// It returns the bytes removed: 0 when the file ends with a complete line, is empty or
// missing, or when no newline is within MaxRecordBytes of its end, which Verify then reports
// as the damage it is.
func CutTornTail(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return 0, nil
	}
	start := max(0, size-MaxRecordBytes-1)
	tail := make([]byte, size-start)
	if _, err := f.ReadAt(tail, start); err != nil {
		return 0, fmt.Errorf("audit: %s: %w", path, err)
	}
	if tail[len(tail)-1] == '\n' {
		return 0, nil
	}
	i := bytes.LastIndexByte(tail, '\n')
	if i < 0 && start > 0 {
		return 0, nil
	}
	keep := start + int64(i) + 1
	if err := f.Truncate(keep); err != nil {
		return 0, fmt.Errorf("audit: %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("audit: %s: %w", path, err)
	}
	return size - keep, nil
}
