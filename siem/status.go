package siem

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// SpoolStatus describes a spool directory without opening it for writing: for a console or a
// check beside a running exporter.
type SpoolStatus struct {
	Segments int
	Bytes    int64            // bytes in the segment files
	End      int64            // offset just past the newest byte
	Acked    map[string]int64 // each sender's acknowledged offset
}

// Pending returns the bytes sender has not had acknowledged.
func (s SpoolStatus) Pending(sender string) int64 {
	ack, ok := s.Acked[sender]
	if !ok {
		return s.Bytes
	}
	return max(0, s.End-ack)
}

// Senders returns the senders with an acknowledged offset, sorted.
func (s SpoolStatus) Senders() []string {
	out := make([]string, 0, len(s.Acked))
	for name := range s.Acked {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// ReadSpoolStatus reads the spool in dir. It changes nothing.
func ReadSpoolStatus(dir string) (SpoolStatus, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return SpoolStatus{}, fmt.Errorf("siem: spool: %w", err)
	}
	st := SpoolStatus{Acked: map[string]int64{}}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "seg-") && strings.HasSuffix(name, ".jsonl"):
			var start int64
			if _, err := fmt.Sscanf(name, "seg-%020d.jsonl", &start); err != nil || segName(start) != name {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return st, fmt.Errorf("siem: spool: %w", err)
			}
			st.Segments++
			st.Bytes += info.Size()
			st.End = max(st.End, start+info.Size())
		case strings.HasPrefix(name, "ack-") && !strings.Contains(name, ".tmp-"):
			v, ok, err := readAck(filepath.Join(dir, name))
			if err != nil {
				return st, err
			}
			if ok {
				st.Acked[strings.TrimPrefix(name, "ack-")] = v
			}
		}
	}
	return st, nil
}
