package audit

import (
	"bufio"
	"fmt"
	"io"
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
	if rep.Head.Seq > rep.LastSigned {
		// Records a previous run wrote but did not sign: count them as unsigned so the next
		// checkpoint covers them.
		l.unsigned = int(rep.Head.Seq - rep.LastSigned)
		l.oldest = rep.Head.Time
	}
	return l, nil
}
