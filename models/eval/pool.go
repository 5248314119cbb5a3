package eval

import (
	"context"
	"runtime"
	"sync"
)

// forEach runs job(0..n-1) on up to workers goroutines (GOMAXPROCS when workers <= 0), stops
// handing out jobs at the first error or when ctx ends, and reports progress after each job.
// Jobs must write only their own results.
func forEach(ctx context.Context, n, workers int, progress func(done, total int), job func(i int) error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	var (
		mu    sync.Mutex
		next  int
		done  int
		first error
		wg    sync.WaitGroup
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= n {
			return 0, false
		}
		if err := ctx.Err(); err != nil {
			first = err
			return 0, false
		}
		next++
		return next - 1, true
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := take()
				if !ok {
					return
				}
				err := job(i)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				done++
				if progress != nil && err == nil {
					progress(done, n) // under the lock: progress need not be safe for concurrent use
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
