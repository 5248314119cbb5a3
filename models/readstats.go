package models

import (
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadStats counts what a data-set reader kept and what it dropped, by reason, so that an
// evaluation can say how many rows it did not use and why.
type ReadStats struct {
	Rows    int
	Kept    int
	Dropped map[string]int
}

// Drop counts n rows dropped for reason.
func (s *ReadStats) Drop(reason string, n int) {
	if s.Dropped == nil {
		s.Dropped = map[string]int{}
	}
	s.Dropped[reason] += n
}

// Add merges o into s.
func (s *ReadStats) Add(o ReadStats) {
	s.Rows += o.Rows
	s.Kept += o.Kept
	for k, v := range o.Dropped {
		s.Drop(k, v)
	}
}

// OpenData opens a data file, decompressing it when its name ends in .gz.
func OpenData(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return gzipFile{zr, f}, nil
}

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error {
	g.Reader.Close()
	return g.f.Close()
}
