package coordinator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilauth/vigil/cluster"
	"github.com/vigilauth/vigil/store"
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

// TestReadAheadCallerCancels: when the caller's context ends mid-iteration, the reads either
// all come or end with an error, never fewer without one (gatherParts would take a short read
// for the whole): reads that do not watch ctx finish, and their feeder stops.
func TestReadAheadCallerCancels(t *testing.T) {
	seqs := make([]uint64, 50)
	for i := range seqs {
		seqs[i] = uint64(i + 1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	read := func(_ context.Context, seq uint64) (uint64, error) {
		time.Sleep(time.Millisecond) // work that does not watch ctx
		return seq, nil
	}
	n := 0
	var err error
	for v, e := range readAhead(ctx, seqs, read) {
		if e != nil {
			err = e
			break
		}
		n++
		if v == 3 {
			cancel()
		}
	}
	if err == nil && n != len(seqs) {
		t.Fatalf("yielded %d of %d with no error after the context ended", n, len(seqs))
	}
}

// TestReadAheadReadsAhead: the reads overlap, which is what readAhead is for (a sequential
// one passes TestReadAhead).
func TestReadAheadReadsAhead(t *testing.T) {
	seqs := []uint64{1, 2, 3, 4}
	var inFlight atomic.Int32
	both := make(chan struct{})
	read := func(ctx context.Context, seq uint64) (uint64, error) {
		if inFlight.Add(1) == 2 {
			close(both)
		}
		select {
		case <-both:
		case <-time.After(5 * time.Second):
		}
		return seq, nil
	}
	start := time.Now()
	for _, err := range readAhead(context.Background(), seqs, read) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if time.Since(start) > 4*time.Second {
		t.Fatal("no two reads were ever in flight at once")
	}
}

// TestLostBlob: an update whose bytes the object store holds changed is lost at once; one it
// says it does not hold is read again for missingBlobGrace after it was stored (a store
// replicating between sites, a mount not there yet), then lost; any other error is read again.
func TestLostBlob(t *testing.T) {
	changed := fmt.Errorf("fetch: %w: other bytes", cluster.ErrBlobLost)
	missing := fmt.Errorf("fetch: %w: %w", cluster.ErrBlobLost, store.ErrNotFound)
	for _, tc := range []struct {
		name string
		err  error
		age  time.Duration
		want bool
	}{
		{"changed", changed, time.Second, true},
		{"missing, just stored", missing, time.Second, false},
		{"missing, long stored", missing, 2 * missingBlobGrace, true},
		{"the store does not answer", fmt.Errorf("fetch: %w", context.DeadlineExceeded), time.Hour, false},
		{"read", nil, time.Hour, false},
	} {
		if got := lostBlob(tc.err, tc.age); got != tc.want {
			t.Errorf("%s: lostBlob = %v, want %v", tc.name, got, tc.want)
		}
	}
}
