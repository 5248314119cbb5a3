package siem

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func lines(from, n int) []byte {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "{\"n\":%d}\n", i)
	}
	return []byte(b.String())
}

// readAll reads the spool from offset from to its end.
func readAll(t *testing.T, s *Spool, from int64) (string, int64) {
	t.Helper()
	var out strings.Builder
	for {
		b, n, next, err := s.Read(from, 3, MaxEventBytes)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return out.String(), from
		}
		out.Write(b)
		from = next
	}
}

// TestSpoolResumesFromAck appends across segments, acknowledges part, reopens, and checks
// that a sender resumes exactly at its acknowledged offset and that segments acknowledged by
// every sender are deleted, but not before.
func TestSpoolResumesFromAck(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, 64, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if n, err := s.Append(lines(i*5, 5)); err != nil || n != 5 {
			t.Fatalf("Append = %d, %v", n, err)
		}
	}
	all, end := readAll(t, s, 0)
	if all != string(lines(0, 50)) {
		t.Fatalf("read back %q", all)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(segs) < 3 {
		t.Fatalf("%d segments; want rotation at 64 bytes", len(segs))
	}
	mid := int64(len(lines(0, 20)))
	if err := s.Cursor("a").Ack(end); err != nil {
		t.Fatal(err)
	}
	if err := s.Cursor("b").Ack(mid); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "seg-*"))
	if len(left) >= len(segs) {
		t.Errorf("no segment deleted after both senders acknowledged offset %d", mid)
	}

	s, err = OpenSpool(dir, 1<<20, 64, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.Cursor("a").Acked(); got != end {
		t.Errorf("a resumes at %d, want %d", got, end)
	}
	rest, _ := readAll(t, s, s.Cursor("b").Acked())
	if rest != string(lines(20, 30)) {
		t.Errorf("b resumes with %q, want events 20..49", rest)
	}
	if n, err := s.Append(lines(50, 1)); err != nil || n != 1 {
		t.Fatalf("Append after reopen = %d, %v", n, err)
	}
	if more, _ := readAll(t, s, end); more != string(lines(50, 1)) {
		t.Errorf("after reopen read %q", more)
	}
}

// TestSpoolCutsPartialLine simulates a crash in the middle of a write: the partial line is cut
// off on open and the next append continues after the last complete event.
func TestSpoolCutsPartialLine(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, MinSegmentBytes, "a")
	if err != nil {
		t.Fatal(err)
	}
	s.Append(lines(0, 3))
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, segName(0)), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"n":3, "cut sho`)
	f.Close()
	s, err = OpenSpool(dir, 1<<20, MinSegmentBytes, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Append(lines(3, 1))
	if all, _ := readAll(t, s, 0); all != string(lines(0, 4)) {
		t.Fatalf("read %q", all)
	}
}

// TestSpoolFull checks the overflow policy: a full spool takes the events that fit, refuses
// the rest with ErrSpoolFull, and takes new ones again once senders acknowledge.
func TestSpoolFull(t *testing.T) {
	one := int64(len(lines(0, 1)))
	s, err := OpenSpool(t.TempDir(), 10*one, 4*one, "a")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 8; i++ { // one by one, so that segments rotate every four events
		if _, err := s.Append(lines(i, 1)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Append(lines(0, 4))
	if !errors.Is(err, ErrSpoolFull) || n != 2 {
		t.Fatalf("Append = %d, %v; want 2 taken and ErrSpoolFull", n, err)
	}
	if n, err := s.Append(lines(2, 1)); !errors.Is(err, ErrSpoolFull) || n != 0 {
		t.Fatalf("Append to a full spool = %d, %v", n, err)
	}
	if err := s.Cursor("a").Ack(8 * one); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Append(lines(12, 1)); err != nil || n != 1 {
		t.Fatalf("Append after ack = %d, %v; want room again", n, err)
	}
}

// TestSpoolCorrupt checks that a spool whose files do not fit together is refused, naming
// the file.
func TestSpoolCorrupt(t *testing.T) {
	tests := []struct {
		name  string
		setup func(dir string)
		wants string
	}{
		{"gap between segments", func(dir string) {
			os.WriteFile(filepath.Join(dir, segName(0)), lines(0, 1), 0o600)
			os.WriteFile(filepath.Join(dir, segName(100)), lines(1, 1), 0o600)
		}, "starts at 100"},
		{"ack past the end", func(dir string) {
			os.WriteFile(filepath.Join(dir, segName(0)), lines(0, 1), 0o600)
			os.WriteFile(filepath.Join(dir, "ack-a"), []byte("999\n"), 0o600)
		}, "ack-a"},
		{"ack not a number", func(dir string) {
			os.WriteFile(filepath.Join(dir, "ack-a"), []byte("x\n"), 0o600)
		}, "ack-a"},
		{"odd segment name", func(dir string) {
			os.WriteFile(filepath.Join(dir, "seg-12.jsonl"), nil, 0o600)
		}, "seg-12.jsonl"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(dir)
			_, err := OpenSpool(dir, 1<<20, MinSegmentBytes, "a")
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.wants) {
				t.Fatalf("OpenSpool = %v, want ErrCorrupt naming %q", err, tc.wants)
			}
		})
	}
}

// TestReadSpoolStatus checks the read-only view against a spool with two senders.
func TestReadSpoolStatus(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenSpool(dir, 1<<20, MinSegmentBytes, "hec", "syslog")
	if err != nil {
		t.Fatal(err)
	}
	s.Append(lines(0, 10))
	one := int64(len(lines(0, 1)))
	s.Cursor("hec").Ack(4 * one)
	s.Close()
	st, err := ReadSpoolStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Segments != 1 || st.End != 10*one || st.Pending("hec") != 6*one || st.Pending("syslog") != 10*one ||
		!slices.Equal(st.Senders(), []string{"hec"}) {
		t.Fatalf("status %+v", st)
	}
}
