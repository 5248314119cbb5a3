package main

import (
	"math"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestProcessCPU: the load test's CPU reading of a process grows with the work it does.
func TestProcessCPU(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	// 200 ms of CPU by the kernel's own account (getrusage), not 200 ms of wall time: on a
	// loaded machine this process may get a small share of a CPU in that time.
	self := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	x := 0.0
	start, wall := self(), time.Now()
	for self()-start < 200*time.Millisecond {
		for range 100000 {
			x += math.Sqrt(x + 1)
		}
		if time.Since(wall) > time.Minute {
			t.Fatalf("200 ms of CPU not used in a minute (%v)", self()-start)
		}
	}
	after, err := processCPU(os.Getpid())
	if err != nil || after-before < 100*time.Millisecond {
		t.Fatalf("CPU time %v -> %v (%v) after 200 ms of work", before, after, err)
	}
	if _, err := processCPU(-1); err == nil {
		t.Fatal("a process that does not exist has a CPU time")
	}
}
