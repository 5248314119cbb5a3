// Package cputime reports a benchmark's CPU time per iteration. On a shared machine wall time
// per iteration grows with the load; the process's CPU time is the cost the work itself has.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Report adds the process's CPU time (user and system, all goroutines) per iteration to b's
// results as cpu-ns/op when the benchmark ends.
func Report(b *testing.B) {
	start := now()
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64((now()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	})
}

func now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
