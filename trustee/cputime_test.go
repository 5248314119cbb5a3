package trustee

import (
	"syscall"
	"testing"
	"time"
)

// reportCPU reports the process's CPU time (user and system, all goroutines) per iteration as
// cpu-ns/op when the benchmark ends. On a shared machine wall time per iteration grows with
// the load; CPU time is the cost the work itself has.
func reportCPU(b *testing.B) {
	start := cpuTime()
	b.Cleanup(func() {
		if b.N > 0 {
			b.ReportMetric(float64((cpuTime()-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	})
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
