package coordinator

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadAhead: updates read back from the tier come in the stream's order however the reads
// finish, no more than readAheadDepth (and the one waited for) at once; the first error ends
// them, and so does the reader stopping, which cancels the reads under way.
func TestReadAhead(t *testing.T) {
	seqs := make([]uint64, 50)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	errBad := errors.New("bad update")
	for _, tc := range []struct {
		name    string
		failAt  uint64 // 0: none
		stopAt  uint64 // 0: read them all
		wantN   int
		wantErr error
	}{
		{"all", 0, 0, 50, nil},
		{"an error", 17, 0, 17, errBad},
		{"the reader stops", 0, 9, 9, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var inFlight, most atomic.Int32
			read := func(ctx context.Context, seq uint64) (uint64, error) {
				n := inFlight.Add(1)
				defer inFlight.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				select {
				case <-time.After(time.Duration(rand.IntN(3)) * time.Millisecond):
				case <-ctx.Done():
					return 0, ctx.Err()
				}
				if seq == tc.failAt {
					return 0, errBad
				}
				return seq, nil
			}
			var got []uint64
			var err error
			for v, e := range readAhead(context.Background(), seqs, read) {
				if e != nil {
					err = e
					break
				}
				got = append(got, v)
				if v == tc.stopAt {
					break
				}
			}
			wantGot := len(got)
			if tc.wantErr != nil {
				wantGot++ // the failed read is counted in wantN
			}
			if wantGot != tc.wantN || !errors.Is(err, tc.wantErr) {
				t.Fatalf("read %d then %v; want %d, %v", len(got), err, tc.wantN, tc.wantErr)
			}
			for i, v := range got {
				if v != seqs[i] {
					t.Fatalf("update %d came as %d: %v", i, v, got)
				}
			}
			if m := most.Load(); m > readAheadDepth+1 {
				t.Errorf("%d reads at once, want at most %d", m, readAheadDepth+1)
			}
		})
	}
}
